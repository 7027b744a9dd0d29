package router

// Param is one captured path parameter. Value is in the escaped form of the
// normalized path (percent-encodings kept), so it can be put back into a
// path unchanged.
type Param struct {
	Name, Value string
}

// inlineParams is how many parameters fit without allocating.
const inlineParams = 8

// Params holds a match's parameters. Its zero value is empty and ready;
// the first eight parameters need no allocation.
type Params struct {
	n      int
	inline [inlineParams]Param
	extra  []Param
}

// Len is the number of parameters.
func (p *Params) Len() int { return p.n }

// At returns the i-th parameter in path order.
func (p *Params) At(i int) Param {
	if i < inlineParams {
		return p.inline[i]
	}
	return p.extra[i-inlineParams]
}

// Get returns the value of the parameter called name.
func (p *Params) Get(name string) (string, bool) {
	for i := 0; i < p.n; i++ {
		if q := p.At(i); q.Name == name {
			return q.Value, true
		}
	}
	return "", false
}

// Add appends a parameter.
func (p *Params) Add(name, value string) {
	if p.n < inlineParams {
		p.inline[p.n] = Param{name, value}
	} else {
		p.extra = append(p.extra, Param{name, value})
	}
	p.n++
}

// Truncate drops parameters after the first n (for backtracking).
func (p *Params) Truncate(n int) {
	if n >= p.n {
		return
	}
	if n < inlineParams {
		p.extra = p.extra[:0]
	} else {
		p.extra = p.extra[:n-inlineParams]
	}
	p.n = n
}

// Reset empties p, keeping capacity.
func (p *Params) Reset() { p.Truncate(0) }

// setName names the i-th parameter. The router captures values while
// walking the path, before it knows which route (and so which names) wins.
func (p *Params) setName(i int, name string) {
	if i < inlineParams {
		p.inline[i].Name = name
	} else {
		p.extra[i-inlineParams].Name = name
	}
}
