//go:build !linux

package bench

import (
	"testing"
	"time"
)

// cpuPerOp runs loop; only Linux reports the thread's CPU time.
func cpuPerOp(_ *testing.B, loop func()) { loop() }

// processCPU is 0: only Linux reports it here.
func processCPU() time.Duration { return 0 }
