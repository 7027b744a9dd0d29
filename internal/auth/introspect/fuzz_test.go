package introspect

import (
	"net/http"
	"testing"
	"time"
)

func FuzzBearerToken(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer a.b.c", "Bearer ", "Bearerx", "Basic YTpi",
		"Bearer a==", "Bearer a=b", "  Bearer\tx~+/", "Bearer \x00", "Bearer " + string(make([]byte, 10))} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		tok, err := bearerToken(http.Header{"Authorization": {v}})
		if err != nil {
			return
		}
		if tok == "" || len(tok) > maxToken || !isB64Token(tok) {
			t.Errorf("accepted token %q from %q", tok, v)
		}
	})
}

func FuzzParseAnswer(f *testing.F) {
	for _, s := range []string{`{"active":true,"sub":"a","scope":"x y"}`, `{"active":false}`, `null`, `[]`,
		`{"active":true,"exp":1e300}`, `{"active":true,"exp":-1,"nbf":"x"}`, `{"active":true,"scope":[1,"a",null]}`,
		`{"active":true,"realm":{"roles":["r"]}}`} {
		f.Add([]byte(s))
	}
	now := time.Unix(1_700_000_000, 0)
	f.Fuzz(func(t *testing.T, body []byte) {
		res, err := parseAnswer(body, "sub", "realm.roles", now)
		if err != nil || !res.active {
			return
		}
		if res.id == nil {
			t.Fatalf("active answer without identity: %s", body)
		}
		if res.hasExp && !res.exp.After(now) {
			t.Errorf("active answer with past exp %v: %s", res.exp, body)
		}
		if len(res.id.Roles) > maxListItems || len(res.id.Scopes) > maxListItems {
			t.Errorf("unbounded lists: %s", body)
		}
	})
}
