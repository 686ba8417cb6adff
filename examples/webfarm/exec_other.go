//go:build !linux

package main

import (
	"context"
	"os/exec"
)

// nodeCommand prepares a node process. Without Linux's Pdeathsig, nodes
// outlive a farm that is killed before it can stop them.
func nodeCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, name, args...)
}
