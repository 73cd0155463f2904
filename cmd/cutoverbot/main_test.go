package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cutoverbot/cutoverbot/internal/testrig"
)

// childEnv, when "1", makes the test binary run `cutoverbot run` instead of the tests: the
// crash and replica tests start the real bot as a separate process this way, so that they can
// SIGKILL it while the emulators, in the test process, live on.
const childEnv = "CUTOVERBOT_TEST_CHILD"

// runEmulated is how tests start the bot against the emulators: `cutoverbot run -lift-bounds`,
// so that jobs can be polled every 50 ms (the flag requires loopback endpoints).
var runEmulated = []string{"run", "-lift-bounds"}

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		os.Exit(runChild())
	}
	// After every test has stopped its bots and emulators, no goroutine of theirs may remain.
	goleak.VerifyTestMain(m)
}

// runChild is the bot process: `cutoverbot run` configured from the environment, stopped by
// SIGINT or SIGTERM like the real binary. It also stops when its stdin closes, which happens
// when the test process that started it dies, so that no bot outlives a killed test run.
func runChild() int {
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		fmt.Fprintln(os.Stderr, "cutoverbot test child: the test process is gone, exiting")
		os.Exit(3)
	}()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, runEmulated, os.Getenv, strings.NewReader(""), os.Stdout, os.Stderr); err != nil {
		fmt.Fprintf(os.Stderr, "cutoverbot: %v\n", err)
		return 1
	}
	return 0
}

// botProc is one `cutoverbot run` process started by a test.
type botProc struct {
	t     testing.TB
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser      // held open for the process's lifetime: it exits when this closes
	logs  *testrig.SyncBuffer // its stdout and stderr
	done  chan struct{}       // closed once the process was reaped
	err   error               // Wait's result, set before done is closed
}

// procEnv is the configuration of a bot process: the sandbox's, a fresh SQLite store, job logs
// read every 200ms, servers watched every 200ms, info-level text logs; extra overrides it.
func (e *e2e) procEnv(extra map[string]string) map[string]string {
	env := botEnv(e.t, map[string]string{
		"CUTOVER_POLL_INTERVAL":  "200ms",
		"CUTOVER_WATCH_INTERVAL": "200ms",
		"CUTOVER_LOG_LEVEL":      "info",
	})
	for _, kv := range e.sb.env() {
		env[kv[0]] = kv[1]
	}
	for k, v := range extra {
		env[k] = v
	}
	return env
}

// startProc starts `cutoverbot run` as a child process with env (see procEnv) and nothing
// else from the test's environment. The process is stopped with SIGTERM when the test ends,
// and must then exit 0; its logs are shown when the test failed.
func (e *e2e) startProc(name string, env map[string]string) *botProc {
	t := e.t
	t.Helper()
	p := &botProc{t: t, name: name, logs: &testrig.SyncBuffer{}, done: make(chan struct{})}
	p.cmd = exec.Command(os.Args[0], "-test.run=^$")
	p.cmd.Env = []string{childEnv + "=1", "HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH"), "AWS_EC2_METADATA_DISABLED=true"}
	for _, k := range []string{"GORACE", "TMPDIR", "GOCOVERDIR"} {
		if v, ok := os.LookupEnv(k); ok {
			p.cmd.Env = append(p.cmd.Env, k+"="+v)
		}
	}
	for k, v := range env {
		p.cmd.Env = append(p.cmd.Env, k+"="+v)
	}
	slices.Sort(p.cmd.Env)
	p.cmd.Stdout, p.cmd.Stderr = p.logs, p.logs
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		if !p.exited() {
			p.stop()
		}
		if strings.Contains(p.logs.String(), "DATA RACE") {
			t.Errorf("%s: the race detector reported a data race", p.name)
		}
		if t.Failed() {
			t.Logf("logs of %s (pid %d):\n%s", p.name, p.cmd.Process.Pid, p.logs.String())
		}
	})
	return p
}

func (p *botProc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// kill ends the process with SIGKILL, as a crash or an OOM kill would, and reaps it.
func (p *botProc) kill() {
	p.t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Fatalf("kill %s: %v", p.name, err)
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s not reaped 10s after SIGKILL", p.name)
	}
}

// stop asks the process to stop with SIGTERM and requires it to exit 0 within 15 s; past that
// it is killed.
func (p *botProc) stop() {
	p.t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		p.t.Errorf("SIGTERM %s: %v", p.name, err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			p.t.Errorf("%s exited with %v after SIGTERM, want exit status 0", p.name, p.err)
		}
	case <-time.After(15 * time.Second):
		p.t.Errorf("%s did not stop within 15s of SIGTERM", p.name)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// waitLog waits until the process has logged a line containing every one of parts.
func (p *botProc) waitLog(what string, parts ...string) {
	p.t.Helper()
	testrig.WaitUntil(p.t, fmt.Sprintf("%s to log %s", p.name, what), 0, func() bool { return p.logged(parts...) > 0 })
}

// logged counts the process's log lines that contain every one of parts.
func (p *botProc) logged(parts ...string) int {
	n := 0
	for line := range strings.SplitSeq(p.logs.String(), "\n") {
		all := true
		for _, part := range parts {
			all = all && strings.Contains(line, part)
		}
		if all {
			n++
		}
	}
	return n
}
