package bucket

import (
	"crypto/sha256"
	"sync"
)

// maxCached bounds a Verifier's cache; past it the cache starts over.
const maxCached = 4096

// Verifier checks tokens, verifying each chain's signatures once: a
// transfer presents the same token with every request, and checking a
// cached chain costs a map lookup and a few comparisons. It is safe for
// concurrent use.
type Verifier struct {
	mu    sync.Mutex
	known map[[32]byte]summary // by the hash of the token's text and the owner
}

// NewVerifier returns a Verifier with an empty cache.
func NewVerifier() *Verifier { return &Verifier{known: make(map[[32]byte]summary)} }

// Verify parses token and checks it for r, as Token.Verify does.
func (v *Verifier) Verify(token string, r Request) error {
	h := sha256.New()
	h.Write(r.Owner[:])
	h.Write([]byte(token))
	var key [32]byte
	h.Sum(key[:0])
	v.mu.Lock()
	s, ok := v.known[key]
	v.mu.Unlock()
	if ok {
		return s.allows(r)
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
