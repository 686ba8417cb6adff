package session

// MemorySizes exposes Memory.sizes to the external tests.
func MemorySizes(m *Memory) (sessions, users int, evicted int64) { return m.sizes() }
