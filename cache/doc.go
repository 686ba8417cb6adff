// Package cache puts a key-value cache in RAM between an application and
// its data store: ObjectCache on Redis (cache/rediscache), Memcached
// (cache/memcachedcache) or local memory, with the cache-aside loading,
// query caching and cached objects built on it.
package cache
