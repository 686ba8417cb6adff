//go:build unix

package testenv

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgToolTimeout bounds initdb and pg_basebackup, which take about a second each.
const pgToolTimeout = time.Minute

// pgPrograms are the PostgreSQL server programs a pair needs; Debian keeps them out of
// $PATH, in /usr/lib/postgresql/<version>/bin.
var pgPrograms = []string{"initdb", "pg_basebackup", "postgres"}

// pgBinDirs lists the directories that may hold the PostgreSQL server programs, best
// first: the newest /usr/lib/postgresql/*/bin, then wherever $PATH has them.
func pgBinDirs() []string {
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
		return v
	}
	sort.SliceStable(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, name := range pgPrograms {
		if p, err := exec.LookPath(name); err == nil {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	return dirs
}

// findPGBin returns the first of dirs holding every program in pgPrograms, or what to
// do when none does.
func findPGBin(getenv func(string) string, dirs []string) (string, action, string) {
	for _, d := range dirs {
		ok := true
		for _, name := range pgPrograms {
			if fi, err := os.Stat(filepath.Join(d, name)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
				ok = false
				break
			}
		}
		if ok {
			return d, use, ""
		}
	}
	act, msg := missing(getenv, fmt.Sprintf(
		"testenv: PostgreSQL server programs (%s) not found in /usr/lib/postgresql/*/bin or $PATH; "+
			"install the Debian package postgresql (apt-get install postgresql) or run scripts/services.sh up, which installs it",
		strings.Join(pgPrograms, ", ")))
	return "", act, msg
}

// pgCredential returns the credential to run PostgreSQL programs with: those of the OS
// user postgres when we are root, since initdb and postgres refuse to run as root; nil
// (run as ourselves) otherwise.
func pgCredential(getenv func(string) string) (*syscall.Credential, action, string) {
	if os.Geteuid() != 0 {
		return nil, use, ""
	}
	u, err := user.Lookup("postgres")
	var uid, gid uint64
	if err == nil {
		uid, err = strconv.ParseUint(u.Uid, 10, 32)
	}
	if err == nil {
		gid, err = strconv.ParseUint(u.Gid, 10, 32)
	}
	if err != nil {
		act, msg := missing(getenv, fmt.Sprintf(
			"testenv: running as root, PostgreSQL must run as the OS user postgres, but looking it up failed (%v); "+
				"install the Debian package postgresql or run scripts/services.sh up, which create it", err))
		return nil, act, msg
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, use, ""
}

// PostgresPair is a private PostgreSQL primary with a streaming standby, for one test.
// See the package doc.
type PostgresPair struct {
	Primary *PostgresServer
	Standby *PostgresServer // streams from Primary; hot standby, so it answers reads
}

// PostgresServer is one server of a PostgresPair.
type PostgresServer struct {
	s       server
	dataDir string
}

// StartPostgresPair creates a primary with initdb on a free loopback port, clones a
// standby from it with pg_basebackup -R on another, starts both and waits until the
// standby streams WAL from the primary. All their files live in one temporary directory.
// t.Cleanup kills both servers and removes the directory.
//
// The servers let anyone on loopback in as user postgres without a password, and trade
// durability for speed like the shared servers of scripts/services.sh: fsync is off, and
// synchronous_commit is off, so Kill may lose the commits of the last few hundred
// milliseconds (a test that needs a commit to survive Kill runs SET synchronous_commit =
// on in its session). Replication is asynchronous.
func StartPostgresPair(t testing.TB) *PostgresPair {
	t.Helper()
	bin, act, msg := findPGBin(os.Getenv, pgBinDirs())
	apply(t, act, msg)
	cred, act, msg := pgCredential(os.Getenv)
	apply(t, act, msg)
	attr := func() *syscall.SysProcAttr {
		a := sysProcAttr()
		if a == nil {
			a = &syscall.SysProcAttr{}
		}
		a.Credential = cred
		return a
	}

	// Not t.TempDir: its parent is 0700 root, which the postgres user cannot traverse.
	dir, err := os.MkdirTemp("", "testenv-pg-")
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatalf("testenv: %v", err)
		}
	}

	// runTool runs a PostgreSQL program to completion with its output in dir/name.log.
	runTool := func(name string, args ...string) {
		t.Helper()
		logPath := filepath.Join(dir, name+".log")
		ctx, cancel := context.WithTimeout(context.Background(), pgToolTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(bin, name), args...)
		cmd.Dir = dir
		cmd.SysProcAttr = attr()
		out, err := cmd.CombinedOutput()
		_ = os.WriteFile(logPath, out, 0o644)
		if err != nil {
			t.Fatalf("testenv: %s %s: %v; its output (also in %s):\n%s",
				name, strings.Join(args, " "), err, logPath, tail(out, 30))
		}
	}

	newServer := func(role string) *PostgresServer {
		p := &PostgresServer{dataDir: filepath.Join(dir, role)}
		p.s = server{
			t:       t,
			name:    "postgres " + role,
			bin:     filepath.Join(bin, "postgres"),
			dir:     dir,
			logPath: filepath.Join(dir, role+".log"),
			stopSig: syscall.SIGINT, // fast shutdown; SIGTERM (smart) waits for clients to leave
			attr:    attr,
			args: func(port int) []string {
				return []string{
					"-D", p.dataDir,
					"-c", "port=" + strconv.Itoa(port),
					"-c", "listen_addresses=127.0.0.1",
					"-c", "unix_socket_directories=" + dir,
					"-c", "wal_level=replica",
					"-c", "max_wal_senders=10",
					"-c", "wal_keep_size=128MB", // a standby stopped for a while can catch up
					"-c", "hot_standby=on",
					"-c", "fsync=off",
					"-c", "synchronous_commit=off",
					"-c", "full_page_writes=off",
					"-c", "wal_receiver_status_interval=1s",
					// Tests date commits by pg_xact_commit_timestamp.
					"-c", "track_commit_timestamp=on",
					// After the primary comes back, the standby reconnects within 0.2s, not 5s.
					"-c", "wal_retrieve_retry_interval=200ms",
					// Small, so that many pairs fit in memory and System V limits.
					"-c", "shared_buffers=16MB",
					"-c", "max_connections=40",
				}
			},
			ready: pgReady,
		}
		return p
	}

	primary := newServer("primary")
	runTool("initdb", "-D", primary.dataDir, "-A", "trust", "-U", "postgres",
		"--no-sync", "-E", "UTF8", "--locale=C.UTF-8")
	primary.launch(t)

	standby := newServer("standby")
	runTool("pg_basebackup", "-h", "127.0.0.1", "-p", strconv.Itoa(primary.s.port), "-U", "postgres",
		"-D", standby.dataDir, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	standby.launch(t)

	// Hot standby accepts connections once consistent, which may be before its WAL
	// receiver has connected: wait for that too, so the pair replicates on return.
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var status string
	err = poll(ctx, 25*time.Millisecond, func() (bool, error) {
		status, err = pgQueryString(standby.DSN(),
			"select coalesce((select status from pg_stat_wal_receiver), 'no wal receiver')")
		return err == nil && status == "streaming", nil
	})
	if err != nil {
		t.Fatalf("testenv: postgres standby on %s does not stream from the primary after %v (status %q, error %v); its log:\n%s",
			standby.Addr(), startTimeout, status, err, standby.s.logTail())
	}
	return &PostgresPair{Primary: primary, Standby: standby}
}

func (p *PostgresServer) launch(t testing.TB) {
	t.Helper()
	if err := p.s.start(); err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(p.Kill)
}

// DSN returns the server's connection URL, for user postgres and database postgres; it
// stays the same across Stop and Start.
func (p *PostgresServer) DSN() string { return pgDSN(p.s.addr()) }

// Addr returns host:port; it stays the same across Stop and Start.
func (p *PostgresServer) Addr() string { return p.s.addr() }

// Kill sends SIGKILL to the postmaster and all its children at once, as a crash of the
// machine would, and waits until they have exited. No-op when not running.
func (p *PostgresServer) Kill() {
	pid := p.s.pid()
	if pid == 0 {
		return
	}
	// Stopped, the postmaster forks no child we would miss, and its children keep it as
	// their parent (once it is dead they belong to init and cannot be told apart).
	_ = syscall.Kill(pid, syscall.SIGSTOP)
	waitStopped(pid)
	kids := pgChildren(pid)
	for _, k := range kids {
		k.kill()
	}
	p.s.kill()
	p.waitGone(kids)
}

// Stop shuts the server down fast (SIGINT: it rolls back open transactions, disconnects
// clients and writes a shutdown checkpoint), killing it if it has not exited after 10
// seconds, and waits until every process of the server has exited. No-op when not running.
func (p *PostgresServer) Stop() {
	pid := p.s.pid()
	if pid == 0 {
		return
	}
	kids := pgChildren(pid)
	p.s.stop()
	// A postmaster that shut down has waited for its children; one killed after
	// stopTimeout leaves them behind, holding its port and shared memory.
	for _, k := range kids {
		k.kill()
	}
	p.waitGone(kids)
}

// Start starts a stopped or killed server again on the same port and data directory and
// waits until it accepts connections (a standby: until it is consistent). It fails the
// test when the server is running.
func (p *PostgresServer) Start() {
	p.s.t.Helper()
	if err := p.s.start(); err != nil {
		p.s.t.Fatalf("testenv: %v", err)
	}
}

// waitGone waits until none of procs lives: until then the postmaster's children hold its
// port and shared memory, so Start would fail.
func (p *PostgresServer) waitGone(procs []proc) {
	deadline := time.Now().Add(stopTimeout)
	for _, k := range procs {
		for k.alive() {
			if time.Now().After(deadline) {
				p.s.t.Errorf("testenv: process %d of %s still runs after SIGKILL", k.pid, p.s.name)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// proc identifies a process: pid and start time, so that a pid reused by another process
// after ours exited is never mistaken for ours.
type proc struct {
	pid   int
	start string
}

// procStat returns the fields of /proc/pid/stat that follow the command name: state,
// ppid, pgrp, ... (field n of proc(5) is at index n-3).
func procStat(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
}

// alive reports whether the process runs and is not a zombie. (Orphans are reaped by
// init, which may take its time, and a zombie holds neither port nor shared memory.)
func (k proc) alive() bool {
	f := procStat(k.pid)
	return len(f) > 19 && f[19] == k.start && f[0] != "Z"
}

func (k proc) kill() {
	if k.alive() {
		_ = syscall.Kill(k.pid, syscall.SIGKILL)
	}
}

// pgChildren lists the live children of process ppid. Without /proc (not Linux) it finds
// none, and the children exit by themselves soon after the postmaster.
func pgChildren(ppid int) []proc {
	ents, _ := os.ReadDir("/proc")
	want := strconv.Itoa(ppid)
	var out []proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if f := procStat(pid); len(f) > 19 && f[1] == want && f[0] != "Z" {
			out = append(out, proc{pid: pid, start: f[19]})
		}
	}
	return out
}

// waitStopped waits briefly until every thread of process pid is stopped by SIGSTOP,
// which the kernel delivers asynchronously: kill returns while a thread of a busy
// multi-threaded server (memcached's workers) may still answer a request or two.
func waitStopped(pid int) {
	for end := time.Now().Add(time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		if allStopped(pid) {
			return
		}
	}
}

// allStopped reports whether no thread of pid runs (stopped, dead or gone). Without
// /proc/pid/task (not Linux) it looks at the process alone.
func allStopped(pid int) bool {
	dir := "/proc/" + strconv.Itoa(pid)
	tasks, err := os.ReadDir(dir + "/task")
	if err != nil {
		f := procStat(pid)
		return len(f) == 0 || f[0] == "T" || f[0] == "Z"
	}
	for _, task := range tasks {
		b, err := os.ReadFile(dir + "/task/" + task.Name() + "/stat")
		if err != nil {
			continue // the thread exited
		}
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 0 && f[0] != "T" && f[0] != "t" && f[0] != "Z" && f[0] != "X" {
			return false
		}
	}
	return true
}

func pgDSN(addr string) string {
	return "postgres://postgres@" + addr + "/postgres?sslmode=disable"
}

// pgReady reports nil once the server at addr accepts a connection and answers.
func pgReady(addr string) error {
	_, err := pgQueryString(pgDSN(addr), "select 'ok'")
	return err
}

// pgQueryString runs a query returning one text value on a connection of its own.
func pgQueryString(dsn, query string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer func() { _ = conn.Close(ctx) }()
	var s string
	err = conn.QueryRow(ctx, query).Scan(&s)
	return s, err
}

// tail returns the last n lines of out.
func tail(out []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
