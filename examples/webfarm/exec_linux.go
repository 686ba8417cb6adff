package main

import (
	"context"
	"os/exec"
	"syscall"
)

// nodeCommand prepares a node process that dies with the farm, even when the
// farm is killed before it can stop its nodes.
func nodeCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}
