package testenv

import "github.com/credgate/credgate/access"

// SecretCost is the argon2id cost tests register partners' secrets at,
// far below credgate's: at credgate's, a hash or a verification takes
// about 200 ms under the race detector, and the tests make hundreds.
// Verification reads the cost from each hash, so nothing else changes;
// credgate's own cost is tested in access (TestSecretCost).
func SecretCost() access.SecretCost { return access.SecretCost{Time: 1, MemoryKiB: 64} }
