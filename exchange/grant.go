package exchange

import (
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Grant is what a reader's requests carry to read a private bucket's
// pieces, and for whom. The exchange carries its bytes and leaves their
// meaning to the holder's Access rule.
type Grant struct {
	Bucket []byte // the bucket read in: 32 bytes, or none
	Token  []byte // a grant token's chain for it, in its text form; empty: none
	// Prove gives, for one holder, the proof its requests carry that this
	// node holds the key the token is to. Nil, or a nil proof, when that
	// key is the node's own: its connection proves it.
	Prove func(holder peer.ID) ([]byte, error)
	// Guest says the reads are for a client of this node (a gateway's),
	// for whom this node's own key speaks not: holders then judge by the
	// token alone.
	Guest bool
}

// AccessRequest is what a server's Access rule judges: who asks for
// which piece, with what the request carries.
type AccessRequest struct {
	Peer                 peer.ID
	CID                  cid.Cid
	Bucket, Token, Proof []byte
	Guest                bool
}

// check reports what is wrong with g's sizes.
func (g *Grant) check() error {
	switch {
	case g == nil:
		return nil
	case len(g.Bucket) != 0 && len(g.Bucket) != 32:
		return fmt.Errorf("exchange: bucket ID of %d bytes, want 32", len(g.Bucket))
	case len(g.Bucket) == 0 && len(g.Token) != 0:
		return fmt.Errorf("exchange: a token without the bucket it is for")
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

// key is what sessions sharing g share: its bucket, token and guest mark.
func (g *Grant) key() (bucket, token string, guest bool) {
	if g == nil {
		return "", "", false
	}
	return string(g.Bucket), string(g.Token), g.Guest
}
