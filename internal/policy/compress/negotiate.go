package compress

// algo is one content coding the gateway can produce.
type algo uint8

const (
	none algo = iota
	zstdAlgo
	brAlgo
	gzipAlgo
	numAlgos
)

// tokens are the Content-Encoding values, indexed by algo.
var tokens = [numAlgos]string{"", "zstd", "br", "gzip"}

func algoByName(s string) algo {
	for a := zstdAlgo; a < numAlgos; a++ {
		if tokens[a] == s {
			return a
		}
	}
	return none
}

// qNone marks a coding the client did not name.
const qNone = -1

// acceptance is the client's weight (in thousandths, 0..1000) for each
// coding, identity and "*"; qNone when not named.
type acceptance struct {
	q        [numAlgos]int16
	identity int16
	star     int16
}

// negotiate picks the algorithm for the Accept-Encoding field values
// among order (the configured algorithms, most preferred first). It does
// not allocate.
func negotiate(values []string, order []algo) algo {
	if len(values) == 0 {
		return none
	}
	var acc acceptance
	for i := range acc.q {
		acc.q[i] = qNone
	}
	acc.identity, acc.star = qNone, qNone
	for _, v := range values {
		parseAcceptEncoding(v, &acc)
	}
	best, bestQ := none, int16(0)
	for _, a := range order {
		q := acc.q[a]
		if q == qNone {
			q = acc.star
		}
		if q > bestQ {
			best, bestQ = a, q
		}
	}
	if best != none && acc.identity > bestQ {
		return none // the client said it prefers the answer as it is
	}
	return best
}

// parseAcceptEncoding folds one field value into acc. Elements with an
// invalid weight are ignored; a name given twice keeps its highest q.
func parseAcceptEncoding(v string, acc *acceptance) {
	for len(v) > 0 {
		var elem string
		if i := indexByte(v, ','); i >= 0 {
			elem, v = v[:i], v[i+1:]
		} else {
			elem, v = v, ""
		}
		name, params := elem, ""
		if i := indexByte(elem, ';'); i >= 0 {
			name, params = elem[:i], elem[i+1:]
		}
		name = trimOWS(name)
		if name == "" {
			continue
		}
		q, ok := weight(params)
		if !ok {
			continue
		}
		var slot *int16
		switch {
		case equalFold(name, "gzip"), equalFold(name, "x-gzip"):
			slot = &acc.q[gzipAlgo]
		case equalFold(name, "br"):
			slot = &acc.q[brAlgo]
		case equalFold(name, "zstd"):
			slot = &acc.q[zstdAlgo]
		case equalFold(name, "identity"):
			slot = &acc.identity
		case name == "*":
			slot = &acc.star
		default:
			continue
		}
		if q > *slot {
			*slot = q
		}
	}
}

// weight parses the parameters of one element: ";q=0.5" (any case,
// optional whitespace). Without a q parameter the weight is 1.
func weight(params string) (int16, bool) {
	q := int16(1000)
	for len(params) > 0 {
		var p string
		if i := indexByte(params, ';'); i >= 0 {
			p, params = params[:i], params[i+1:]
		} else {
			p, params = params, ""
		}
		p = trimOWS(p)
		if len(p) < 2 || (p[0] != 'q' && p[0] != 'Q') || p[1] != '=' {
			continue // other parameters carry no meaning for us
		}
		var ok bool
		if q, ok = parseQValue(p[2:]); !ok {
			return 0, false
		}
	}
	return q, true
}

// parseQValue parses an RFC 9110 qvalue: 0[.ddd] or 1[.000].
func parseQValue(s string) (int16, bool) {
	if len(s) == 0 || len(s) > 5 || (s[0] != '0' && s[0] != '1') {
		return 0, false
	}
	q := int16(s[0]-'0') * 1000
	if len(s) == 1 {
		return q, true
	}
	if s[1] != '.' {
		return 0, false
	}
	mul := int16(100)
	for i := 2; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		q += int16(c-'0') * mul
		mul /= 10
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}

func indexByte(s string, c byte) int {
	for i := 0; i < len(s); i++ {
		if s[i] == c {
			return i
		}
	}
	return -1
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// equalFold compares ASCII case-insensitively; want is lower case.
func equalFold(s, want string) bool {
	if len(s) != len(want) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != want[i] {
			return false
		}
	}
	return true
}
