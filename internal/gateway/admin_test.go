package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestAdminEndpoints(t *testing.T) {
	t.Parallel()
	up := newUpstream(t, "up")
	cfg := func(n int) string {
		return versionConfig(n, up.URL) + `
admin:
  address: "127.0.0.1:0"
  token: "0123456789abcdef-admin"
`
	}
	g := startGateway(t, cfg(1))
	admin := "http://" + g.rt.AdminAddr()
	get := func(method, path, token string) (*http.Response, string) {
		req, _ := http.NewRequest(method, admin+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	if resp, _ := get("GET", "/healthz", ""); resp.StatusCode != 200 {
		t.Errorf("/healthz: %d; want 200 (public)", resp.StatusCode)
	}
	if resp, _ := get("GET", "/readyz", ""); resp.StatusCode != 200 {
		t.Errorf("/readyz: %d; want 200", resp.StatusCode)
	}
	if resp, _ := get("POST", "/api/v1/reload", ""); resp.StatusCode != 401 {
		t.Errorf("reload without token: %d; want 401", resp.StatusCode)
	}

	// Traffic, then metrics reflect it.
	for i := 0; i < 3; i++ {
		g.do("GET", "/version", nil, "").Body.Close()
	}
	_, metrics := get("GET", "/metrics", "")
	if !strings.Contains(metrics, `portunus_requests_total{`) || !strings.Contains(metrics, `route="version"`) {
		t.Errorf("metrics lack per-route request counts:\n%s", grepLines(metrics, "portunus_requests_total"))
	}

	g.rewrite(cfg(2))
	resp, body := get("POST", "/api/v1/reload", "0123456789abcdef-admin")
	if resp.StatusCode != 200 {
		t.Fatalf("reload: %d %s", resp.StatusCode, body)
	}
	var st ReloadStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil || !st.OK || st.Hash == "" {
		t.Errorf("reload answer = %s; want ok with hash", body)
	}
	r2 := g.do("GET", "/version", nil, "")
	b, _ := io.ReadAll(r2.Body)
	r2.Body.Close()
	if string(b) != "v2" {
		t.Errorf("after admin reload: %q; want v2", b)
	}

	g.rewrite("listeners: [{ address: \"127.0.0.1:0\" }]\nroutes: [{}]\n")
	resp, body = get("POST", "/api/v1/reload", "0123456789abcdef-admin")
	if resp.StatusCode != 422 || !strings.Contains(body, "portunus.yaml:2:") {
		t.Errorf("invalid reload: %d %s; want 422 listing FILE:LINE errors", resp.StatusCode, body)
	}
	_, metrics = get("GET", "/metrics", "")
	if !strings.Contains(metrics, `portunus_config_reloads_total{result="failure"} 1`) {
		t.Errorf("reload failure not counted:\n%s", grepLines(metrics, "reloads"))
	}
	if !strings.Contains(metrics, fmt.Sprintf(`portunus_config_info{hash="%s"} 1`, st.Hash)) {
		t.Errorf("config hash gauge missing:\n%s", grepLines(metrics, "config_info"))
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
