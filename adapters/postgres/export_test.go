package postgres

// AppendLockKey is the advisory lock key (class, key) a Store's appends
// take, for tests that hold it to keep commits waiting.
func AppendLockKey(s *Store) (int32, int32) { return appendLockClass, s.appendLockKey }
