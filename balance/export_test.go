package balance

// NewLeastLoadedIndexed is NewLeastLoaded with the index of backends by
// load in use from two backends on, for the tests of the index with the
// conformance kit's small sets.
func NewLeastLoadedIndexed(cfg LeastLoadedConfig) *LeastLoaded {
	l := NewLeastLoaded(cfg)
	l.indexMin = 2
	return l
}
