//go:build linux

package bench

import (
	"runtime"
	"syscall"
	"testing"
	"time"
)

// cpuPerOp reports the CPU time of the calling thread per iteration of
// loop as cpu-ns/op: on a shared machine a benchmark's ns/op counts the
// time other processes held its core, which varies from run to run by
// more than the few percent scripts/bench-observe.sh must resolve; the
// time the thread itself ran does not. The goroutine is locked to its
// thread for the loop, so the thread's clock is the benchmark's.
func cpuPerOp(b *testing.B, loop func()) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var r0, r1 syscall.Rusage
	const rusageThread = 1 // RUSAGE_THREAD
	err0 := syscall.Getrusage(rusageThread, &r0)
	loop()
	err1 := syscall.Getrusage(rusageThread, &r1)
	if err0 != nil || err1 != nil || b.N == 0 {
		return
	}
	ns := r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano()
	b.ReportMetric(float64(ns)/float64(b.N), "cpu-ns/op")
}

// processCPU is the CPU time the process has used, all threads.
func processCPU() time.Duration {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
