package e2e

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock returns the commands of the fenced block that follows the
// marker comment <!-- readme:NAME --> in README.md.
func readmeBlock(t *testing.T, name string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	marker := "<!-- readme:" + name + " -->"
	i := strings.Index(text, marker)
	if i < 0 {
		t.Fatalf("README.md has no %s marker", marker)
	}
	rest := text[i+len(marker):]
	start := strings.Index(rest, "```sh\n")
	if start < 0 {
		t.Fatalf("no ```sh block after %s", marker)
	}
	rest = rest[start+len("```sh\n"):]
	end := strings.Index(rest, "```")
	var cmds []string
	for _, l := range strings.Split(rest[:end], "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			cmds = append(cmds, l)
		}
	}
	return cmds
}

// TestReadmeCommands runs the README's two commands exactly as written:
// the first starts the quickstart gateway (and the tour's curl lines run
// against it), the second is the test command, which .ci/run must call
// verbatim.
func TestReadmeCommands(t *testing.T) {
	if os.Getenv("PORTUNUS_README_INNER") != "" {
		t.Skip("inside the README test command run by this test")
	}
	if testing.Short() {
		t.Skip("builds and runs the quickstart with go run")
	}
	start := readmeBlock(t, "start")
	test := readmeBlock(t, "test")
	tour := readmeBlock(t, "tour")
	if len(start) != 1 || len(test) != 1 {
		t.Fatalf("README must show exactly one start and one test command; got %q and %q", start, test)
	}

	t.Run("ci calls the test command", func(t *testing.T) {
		ci, err := os.ReadFile(filepath.Join(repoRoot, ".ci", "run"))
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, l := range strings.Split(string(ci), "\n") {
			if strings.TrimSpace(l) == test[0] {
				found = true
			}
		}
		if !found {
			t.Errorf(".ci/run does not call the README's test command %q", test[0])
		}
	})

	t.Run("start and tour", func(t *testing.T) {
		if _, err := exec.LookPath("curl"); err != nil {
			t.Skip("curl is not installed")
		}
		cmd := exec.Command("bash", "-c", start[0])
		cmd.Dir = repoRoot
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		var logs strings.Builder
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// exited is closed when the command ends, so every waiter sees
		// it (the start loop and stop alike); waitErr is set before.
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		stopped := false
		stop := func() {
			if stopped {
				return
			}
			stopped = true
			// go run starts the gateway as a child: signal the group.
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(40 * time.Second):
				_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
				<-exited
			}
		}
		defer stop()

		// go run compiles first: allow it time.
		deadline := time.Now().Add(3 * time.Minute)
		for {
			resp, err := http.Get("http://127.0.0.1:8080/ping")
			if err == nil {
				resp.Body.Close()
				break
			}
			select {
			case <-exited:
				t.Fatalf("the start command exited (%v):\n%s", waitErr, logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("quickstart gateway did not answer on 127.0.0.1:8080:\n%s", logs.String())
			}
			time.Sleep(100 * time.Millisecond)
		}
		// The first entry whose key the line contains says what its
		// output must contain.
		expect := []struct{ key, want string }{
			{"DELETE", "405"},
			{"/ping", "pong"},
			{"/api/hello", `"X-Env"`},
			{"/v1/users/42", `/users/42`},
			{"/nowhere", "urn:portunus:problem:no-route"},
			{"/events", "data:"},
			{"/healthz", "ok"},
			{"/reload", `"ok": true`},
		}
		for _, line := range tour {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			c := exec.CommandContext(ctx, "bash", "-c", line)
			out, err := c.CombinedOutput()
			cancel()
			if err != nil {
				t.Errorf("%s: %v\n%s", line, err, out)
				continue
			}
			matched := false
			for _, e := range expect {
				if strings.Contains(line, e.key) {
					matched = true
					if !strings.Contains(string(out), e.want) {
						t.Errorf("%s: output lacks %q:\n%s", line, e.want, out)
					}
					break
				}
			}
			if !matched {
				t.Errorf("no expectation for the README tour line %q: add one", line)
			}
		}
		stop()
		if !strings.Contains(logs.String(), `"msg":"stopped"`) {
			t.Errorf("the gateway did not drain and stop on SIGTERM:\n%s", logs.String())
		}
	})

	t.Run("test command", func(t *testing.T) {
		// Run exactly the README's command; the environment narrows it to
		// building and vetting every package's tests (-run matching
		// nothing), since this test is itself part of that command's run.
		cmd := exec.Command("bash", "-c", test[0])
		cmd.Dir = repoRoot
		cmd.Env = append(os.Environ(), "PORTUNUS_README_INNER=1", "GOFLAGS=-run=^$")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", test[0], err, out)
		}
		if !strings.Contains(string(out), "ok  \tgithub.com/portunus-gw/portunus/internal/gateway") {
			t.Errorf("the test command did not build the gateway tests:\n%s", out)
		}
	})
}
