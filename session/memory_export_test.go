package session

// MemorySizes exposes Memory.sizes to the external tests.
func MemorySizes(m *Memory) (sessions, users int) { return m.sizes() }
