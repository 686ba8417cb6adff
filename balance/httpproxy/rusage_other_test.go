//go:build !unix

package httpproxy

// cpuTime is not measured here (see rusage_test.go).
func cpuTime() int64 { return 0 }
