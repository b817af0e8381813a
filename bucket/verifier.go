package bucket

import (
	"crypto/sha256"
	"sync"
)

// maxCached bounds each of a Verifier's caches; past it a cache starts
// over.
const maxCached = 4096

// Verifier checks tokens, verifying each chain's signatures once and each
// proof once: a transfer presents the same token and proof with every
// request, and checking a cached chain costs two hashes, two map lookups
// and a few comparisons. It is safe for concurrent use.
type Verifier struct {
	mu     sync.Mutex
	known  map[[32]byte]summary  // by the hash of the owner and the token's text
	proven map[[32]byte]struct{} // proofs that verified, by the hash of all they bind
}

// NewVerifier returns a Verifier with empty caches.
func NewVerifier() *Verifier {
	return &Verifier{known: make(map[[32]byte]summary), proven: make(map[[32]byte]struct{})}
}

// Verify parses token and checks it for r, as Token.Verify does.
func (v *Verifier) Verify(token string, r Request) error {
	key := cacheKey(r.Owner[:], []byte(token))
	v.mu.Lock()
	s, ok := v.known[key]
	v.mu.Unlock()
	if ok {
		return s.allows(r, v.proof)
	}
	t, err := ParseToken(token)
	if err != nil {
		return err
	}
	if err := t.Verify(r); err != nil {
		return err
	}
	v.mu.Lock()
	if len(v.known) >= maxCached {
		clear(v.known)
	}
	v.known[key] = summarize(t)
	v.mu.Unlock()
	return nil
}

// proof is Proof.by, remembering the proofs that verified.
func (v *Verifier) proof(p Proof, subject PublicKey, b ID) bool {
	key := cacheKey(subject[:], proofMessage(b, p.Holder, p.Requester), p.Sig)
	v.mu.Lock()
	_, ok := v.proven[key]
	v.mu.Unlock()
	if ok {
		return true
	}
	if !p.by(subject, b) {
		return false
	}
	v.mu.Lock()
	if len(v.proven) >= maxCached {
		clear(v.proven)
	}
	v.proven[key] = struct{}{}
	v.mu.Unlock()
	return true
}

// cacheKey is the SHA-256 of parts, one after the other.
func cacheKey(parts ...[]byte) (key [32]byte) {
	h := sha256.New()
	for _, p := range parts {
		h.Write(p)
	}
	h.Sum(key[:0])
	return key
}
