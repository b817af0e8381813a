package exchange

import (
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
)

// Grant is what a reader's requests carry to read a private bucket's
// pieces. The exchange carries its bytes and leaves their meaning to the
// holder's Access rule.
type Grant struct {
	Bucket []byte // the bucket read in: 32 bytes
	Token  []byte // a grant token's chain for it, in its text form; empty: none
	// Prove gives, for one holder, the proof its requests carry that this
	// node holds the key the token is to. Nil, or a nil proof, when that
	// key is the node's own: its connection proves it.
	Prove func(holder peer.ID) ([]byte, error)
}

// check reports what is wrong with g's sizes.
func (g *Grant) check() error {
	switch {
	case g == nil:
		return nil
	case len(g.Bucket) != 32:
		return fmt.Errorf("exchange: bucket ID of %d bytes, want 32", len(g.Bucket))
	case len(g.Token) > MaxToken:
		return fmt.Errorf("exchange: token of %d bytes, at most %d", len(g.Token), MaxToken)
	}
	return nil
}

// proof is g's proof for holder p.
func (g *Grant) proof(p peer.ID) ([]byte, error) {
	if g == nil || g.Prove == nil {
		return nil, nil
	}
	b, err := g.Prove(p)
	if err == nil && len(b) > MaxProof {
		err = fmt.Errorf("exchange: proof of %d bytes, at most %d", len(b), MaxProof)
	}
	return b, err
}

// key is what sessions sharing g share: its bucket and token.
func (g *Grant) key() (bucket, token string) {
	if g == nil {
		return "", ""
	}
	return string(g.Bucket), string(g.Token)
}
