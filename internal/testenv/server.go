package testenv

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	startTimeout = 20 * time.Second // from exec to answering
	stopTimeout  = 10 * time.Second // graceful stop before SIGKILL
	startTries   = 5                // on a bind race for the port
)

// findBinary returns the path of program name, or what to do when it is missing.
func findBinary(getenv func(string) string, name, pkg string) (string, action, string) {
	p, err := exec.LookPath(name)
	if err == nil {
		return p, use, ""
	}
	act, msg := missing(getenv, fmt.Sprintf(
		"testenv: %s not found in $PATH; install the Debian package %s (apt-get install %s) or run scripts/services.sh up, which installs it",
		name, pkg, pkg))
	return "", act, msg
}

// server is one private server process the test controls.
type server struct {
	t       testing.TB
	name    string                  // program, for messages
	bin     string                  // path of the program
	dir     string                  // working directory and files
	args    func(port int) []string // command line for a port
	ready   func(addr string) error // nil once the server serves
	port    int                     // 0 until the first start
	logPath string
	stopSig syscall.Signal              // asks for a graceful stop; 0 means SIGTERM
	attr    func() *syscall.SysProcAttr // process attributes; nil means sysProcAttr()

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited and been waited for
}

func (s *server) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port)) }

// start runs the server: on a fresh free port when s.port is 0, else on s.port.
func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		return fmt.Errorf("%s is already running", s.name)
	}
	fixed := s.port != 0
	var err error
	for try := 0; try < startTries; try++ {
		if try > 0 && fixed {
			time.Sleep(200 * time.Millisecond) // the port may be briefly held by another process
		}
		if !fixed {
			if s.port, err = freePort(); err != nil {
				return err
			}
		}
		var exited bool
		if exited, err = s.startOnce(); err == nil {
			return nil
		}
		if !exited {
			return err // it hung instead of serving: retrying will not help
		}
	}
	return err
}

// startOnce starts the process and waits until it serves; exited reports a process that
// ended by itself (a port someone else took, say), which is worth another try.
func (s *server) startOnce() (exited bool, err error) {
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return false, err
	}
	cmd := exec.Command(s.bin, s.args(s.port)...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if s.attr != nil {
		cmd.SysProcAttr = s.attr()
	} else {
		cmd.SysProcAttr = sysProcAttr()
	}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return false, fmt.Errorf("start %s: %w", s.name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		close(done)
	}()
	addr := s.addr()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var lastErr error
	err = poll(ctx, 25*time.Millisecond, func() (bool, error) {
		select {
		case <-done:
			return false, errExited
		default:
		}
		lastErr = s.ready(addr)
		return lastErr == nil, nil
	})
	if err == nil {
		s.cmd, s.done = cmd, done
		return false, nil
	}
	_ = cmd.Process.Kill()
	<-done
	if errors.Is(err, errExited) {
		return true, fmt.Errorf("%s on %s exited at start; its log:\n%s", s.name, addr, s.logTail())
	}
	return false, fmt.Errorf("%s on %s did not answer within %v (last error: %v); its log:\n%s",
		s.name, addr, startTimeout, lastErr, s.logTail())
}

var errExited = errors.New("process exited")

// kill sends sig and waits for the process to exit, sending SIGKILL after wait.
func (s *server) signal(sig syscall.Signal, wait time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Signal(sig)
	_ = s.cmd.Process.Signal(syscall.SIGCONT) // a paused server must run to handle sig
	select {
	case <-s.done:
	case <-time.After(wait):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd, s.done = nil, nil
}

func (s *server) kill() { s.signal(syscall.SIGKILL, stopTimeout) }
func (s *server) stop() {
	sig := s.stopSig
	if sig == 0 {
		sig = syscall.SIGTERM
	}
	s.signal(sig, stopTimeout)
}

// pause stops the process with SIGSTOP: it keeps its port and connections and answers
// nothing, as a hung server does, until resume.
// pause returns once every thread of the server has stopped, so that nothing the test
// sends afterwards is answered.
func (s *server) pause() {
	s.send(syscall.SIGSTOP)
	if pid := s.pid(); pid != 0 {
		waitStopped(pid)
	}
}
func (s *server) resume() { s.send(syscall.SIGCONT) }

func (s *server) send(sig syscall.Signal) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		_ = s.cmd.Process.Signal(sig)
	}
}

func (s *server) restart() {
	s.t.Helper()
	s.stop()
	if err := s.start(); err != nil {
		s.t.Fatalf("testenv: restart: %v", err)
	}
}

func (s *server) pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return strings.Join(lines, "\n")
}

// launch finds the binary, starts the server and registers its cleanup.
func launch(t testing.TB, s *server, pkg string) {
	t.Helper()
	bin, act, msg := findBinary(os.Getenv, s.name, pkg)
	apply(t, act, msg)
	s.t, s.bin = t, bin
	if s.dir == "" {
		s.dir = t.TempDir()
	}
	s.logPath = filepath.Join(s.dir, s.name+".log")
	if err := s.start(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(s.kill)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ask sends a one-line request and returns the first reply line, without CRLF.
func ask(addr, req string) (string, error) {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close() }()
	_ = conn.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := conn.Write([]byte(req)); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimRight(line, "\r\n"), err
}

// RedisOptions configures StartRedis.
type RedisOptions struct {
	// AppendOnly turns on the append-only file with appendfsync always, so every
	// acknowledged write survives Kill and Restart. Off, the server keeps nothing on disk.
	AppendOnly bool
}

// RedisServer is a private redis-server for one test. See the package doc.
type RedisServer struct{ s server }

// StartRedis starts a redis-server of the test's own on a free loopback port, with its
// files in t.TempDir(), and waits until it answers PING. t.Cleanup kills it.
func StartRedis(t testing.TB, opts RedisOptions) *RedisServer {
	t.Helper()
	aof := "no"
	if opts.AppendOnly {
		aof = "yes"
	}
	r := &RedisServer{s: server{
		name: "redis-server",
		args: func(port int) []string {
			return []string{
				"--port", strconv.Itoa(port), "--bind", "127.0.0.1",
				"--daemonize", "no", "--logfile", "", "--dir", ".",
				"--save", "", "--appendonly", aof, "--appendfsync", "always",
			}
		},
		ready: func(addr string) error {
			line, err := ask(addr, "PING\r\n")
			if err == nil && line != "+PONG" {
				err = fmt.Errorf("PING answered %q", line) // -LOADING while it reads the AOF
			}
			return err
		},
	}}
	launch(t, &r.s, "redis-server")
	return r
}

// Addr returns host:port; it stays the same across Restart.
func (r *RedisServer) Addr() string { return r.s.addr() }

// Dir returns the server's working directory (where the AOF lives).
func (r *RedisServer) Dir() string { return r.s.dir }

// Kill sends SIGKILL and waits until the process has exited. No-op when not running.
func (r *RedisServer) Kill() { r.s.kill() }

// Stop shuts the server down gracefully (SIGTERM: Redis flushes its AOF and exits),
// killing it if it has not exited after 10 seconds. No-op when not running.
func (r *RedisServer) Stop() { r.s.stop() }

// Pause freezes the server with SIGSTOP: connections stay open and nothing is answered,
// as with a hung server, until Resume (Kill, Stop and the cleanup work on a paused
// server).
func (r *RedisServer) Pause() { r.s.pause() }

// Resume lets a paused server run again.
func (r *RedisServer) Resume() { r.s.resume() }

// Restart stops the server if it runs and starts it again on the same port and
// directory, waiting until it answers PING (after loading its AOF, if any).
func (r *RedisServer) Restart() {
	r.s.t.Helper()
	r.s.restart()
}

// MemcachedServer is a private memcached for one test. See the package doc.
type MemcachedServer struct{ s server }

// MemcachedOptions configures StartMemcachedWith.
type MemcachedOptions struct {
	// MemoryMB is the item memory (memcached's -m); 0 means 64, memcached's default.
	MemoryMB int
	// NoEviction makes a full server refuse a store with "SERVER_ERROR out of memory"
	// (memcached's -M) rather than evict what it holds: for a test whose model
	// counts every acknowledged write as kept until a crash.
	NoEviction bool
}

// StartMemcached starts a memcached of the test's own on a free loopback port and waits
// until it answers. t.Cleanup kills it.
func StartMemcached(t testing.TB) *MemcachedServer {
	t.Helper()
	return StartMemcachedWith(t, MemcachedOptions{})
}

// StartMemcachedWith is StartMemcached with opts.
func StartMemcachedWith(t testing.TB, opts MemcachedOptions) *MemcachedServer {
	t.Helper()
	mem := opts.MemoryMB
	if mem == 0 {
		mem = 64
	}
	m := &MemcachedServer{s: server{
		name: "memcached",
		args: func(port int) []string {
			a := []string{"-l", "127.0.0.1", "-p", strconv.Itoa(port), "-U", "0", "-m", strconv.Itoa(mem)}
			if opts.NoEviction {
				a = append(a, "-M")
			}
			if os.Geteuid() == 0 {
				a = append(a, "-u", "root") // memcached refuses to run as root otherwise
			}
			return a
		},
		ready: func(addr string) error {
			line, err := ask(addr, "version\r\n")
			if err == nil && !strings.HasPrefix(line, "VERSION") {
				err = fmt.Errorf("version answered %q", line)
			}
			return err
		},
	}}
	launch(t, &m.s, "memcached")
	return m
}

// Addr returns host:port; it stays the same across Restart.
func (m *MemcachedServer) Addr() string { return m.s.addr() }

// Kill sends SIGKILL and waits until the process has exited. No-op when not running.
func (m *MemcachedServer) Kill() { m.s.kill() }

// Stop shuts the server down with SIGTERM. No-op when not running.
func (m *MemcachedServer) Stop() { m.s.stop() }

// Pause freezes the server with SIGSTOP until Resume; see RedisServer.Pause.
func (m *MemcachedServer) Pause() { m.s.pause() }

// Resume lets a paused server run again.
func (m *MemcachedServer) Resume() { m.s.resume() }

// Restart stops the server if it runs and starts it again, empty, on the same port.
func (m *MemcachedServer) Restart() {
	m.s.t.Helper()
	m.s.restart()
}
