package grpcbalance

// LoadTableSize is the number of addresses t holds, for tests.
func LoadTableSize(t *LoadTable) int64 { return t.size.Load() }
