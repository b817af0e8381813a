package bucket

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"

	"github.com/multiformats/go-multibase"
)

// PublicKey is an account: an ed25519 public key. Its text form is a
// did:key, "did:key:z6Mk…": multibase base58btc of the multicodec
// ed25519-pub prefix (0xed 0x01) and the 32 key bytes, as UCAN and other
// capability systems write keys.
type PublicKey [ed25519.PublicKeySize]byte

// PrivateKey signs for an account.
type PrivateKey struct{ k ed25519.PrivateKey }

// ErrBadKey is the error of a key that does not parse.
var ErrBadKey = errors.New("bad key")

const didKeyPrefix = "did:key:"

var ed25519Pub = []byte{0xed, 0x01}

// NewKey makes a new account key.
func NewKey() (PrivateKey, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return PrivateKey{}, fmt.Errorf("generate key: %w", err)
	}
	return PrivateKey{k}, nil
}

// KeyFromSeed is the private key of a 32-byte ed25519 seed.
func KeyFromSeed(seed []byte) (PrivateKey, error) {
	if len(seed) != ed25519.SeedSize {
		return PrivateKey{}, fmt.Errorf("%w: seed of %d bytes, want %d", ErrBadKey, len(seed), ed25519.SeedSize)
	}
	return PrivateKey{ed25519.NewKeyFromSeed(seed)}, nil
}

// Seed returns the key's 32-byte seed, what a keystore keeps.
func (k PrivateKey) Seed() []byte { return k.k.Seed() }

// Public returns the account of k.
func (k PrivateKey) Public() PublicKey {
	var p PublicKey
	copy(p[:], k.k.Public().(ed25519.PublicKey))
	return p
}

// Sign signs msg.
func (k PrivateKey) Sign(msg []byte) []byte { return ed25519.Sign(k.k, msg) }

// Verify reports whether sig is p's signature of msg.
func (p PublicKey) Verify(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(p[:], msg, sig)
}

// PublicKeyFromBytes is the account of 32 raw ed25519 public key bytes,
// as libp2p's crypto.PubKey.Raw returns them.
func PublicKeyFromBytes(b []byte) (PublicKey, error) {
	var p PublicKey
	if len(b) != len(p) {
		return p, fmt.Errorf("%w: %d bytes, want an ed25519 key of %d", ErrBadKey, len(b), len(p))
	}
	copy(p[:], b)
	return p, nil
}

// String returns the did:key form.
func (p PublicKey) String() string {
	s, _ := multibase.Encode(multibase.Base58BTC, append(append([]byte{}, ed25519Pub...), p[:]...))
	return didKeyPrefix + s
}

// ParsePublicKey reads the did:key form.
func ParsePublicKey(s string) (PublicKey, error) {
	var p PublicKey
	rest, ok := strings.CutPrefix(s, didKeyPrefix)
	if !ok || len(rest) == 0 || rest[0] != 'z' || len(rest) > 64 {
		return p, fmt.Errorf("%w: %.80q is not a did:key:z… ed25519 key", ErrBadKey, s)
	}
	_, b, err := multibase.Decode(rest)
	if err != nil {
		return p, fmt.Errorf("%w: %.80q: %v", ErrBadKey, s, err)
	}
	if len(b) != len(ed25519Pub)+len(p) || b[0] != ed25519Pub[0] || b[1] != ed25519Pub[1] {
		return p, fmt.Errorf("%w: %.80q is not an ed25519 did:key", ErrBadKey, s)
	}
	copy(p[:], b[len(ed25519Pub):])
	return p, nil
}

// MarshalText implements encoding.TextMarshaler.
func (p PublicKey) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (p *PublicKey) UnmarshalText(b []byte) error {
	k, err := ParsePublicKey(string(b))
	*p = k
	return err
}
