// Package access is who may call credgate and how they prove it: the
// access tokens credgate issues (EdDSA JWTs) and the signing-key set that
// verifies them and is published as a JWK Set; client secrets (argon2id
// hashes); partners' registered public keys (JWKs, parsed with go-jose and
// each pinned to one algorithm) and the private_key_jwt client assertions
// they sign; and the replay set that makes an assertion single-use.
//
// It knows nothing of HTTP or storage: the gateway calls it from its
// middleware and token endpoint, and service calls it to hash secrets and
// parse keys when partners are registered.
package access
