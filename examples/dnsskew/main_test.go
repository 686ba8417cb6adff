package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestRun runs the measurement: clients that cache one round-robin DNS
// answer overload a clone, while the same rotation per request, or a
// balancer per request, spreads evenly.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	var out bytes.Buffer
	res, err := run(ctx, &out, defaultConfig)
	require.NoError(t, err)
	t.Log("\n" + out.String())

	clones := defaultConfig.Clones
	for _, s := range []spread{res.Cached, res.PerRequestDNS, res.Balancer} {
		require.Len(t, s.Counts, clones, "%s: every clone got requests", s.Name)
	}
	require.Greater(t, res.Cached.Ratio(clones), 1.5, "caching one answer skews the load")
	require.InDelta(t, 1, res.PerRequestDNS.Ratio(clones), 0.05, "the DNS rotation itself is even")
	require.InDelta(t, 1, res.Balancer.Ratio(clones), 0.01, "a balancer per request is even")
	require.Contains(t, out.String(), "clients cache one answer")
}

func TestRunRejectsBadConfig(t *testing.T) {
	_, err := run(t.Context(), &bytes.Buffer{}, config{Clones: 0, Clients: 10, ZipfS: 1.2})
	require.Error(t, err)
}
