package bucket

import (
	"encoding/binary"
	"fmt"
)

// Proof shows that a requester holds the key a grant is to, bound to one
// node it asks and to itself: the key's signature over the bucket and the
// two nodes' IDs. The grant's text travels with it in the open; a node
// that collects both can use neither: the proof names that node as the
// one asked, and the requester's ID is one only the requester's
// connection proves.
type Proof struct {
	Holder    []byte // the ID of the node asked (a libp2p peer ID's bytes)
	Requester []byte // the ID of the node asking
	Sig       []byte
}

// proofContext starts the bytes a proof signs; no other message of ddc
// starts with it.
const proofContext = "ddc/grant-proof/v1\x00"

// maxProofID bounds each ID a proof binds: a peer ID is under 64 bytes.
const maxProofID = 128

func proofMessage(b ID, holder, requester []byte) []byte {
	m := make([]byte, 0, len(proofContext)+len(b)+4+len(holder)+len(requester))
	m = append(m, proofContext...)
	m = append(m, b[:]...)
	m = binary.BigEndian.AppendUint16(m, uint16(len(holder)))
	m = append(m, holder...)
	return append(m, requester...)
}

// Prove signs with key, the key a grant is to, that its holder, the node
// requester, asks the node holder for bucket b under that grant.
func Prove(key PrivateKey, b ID, holder, requester []byte) ([]byte, error) {
	if len(holder) == 0 || len(holder) > maxProofID || len(requester) == 0 || len(requester) > maxProofID {
		return nil, fmt.Errorf("%w: a proof binds IDs of 1 to %d bytes, not %d and %d", ErrBadGrant, maxProofID, len(holder), len(requester))
	}
	return key.Sign(proofMessage(b, holder, requester)), nil
}

// by reports whether p is subject's proof for bucket b.
func (p Proof) by(subject PublicKey, b ID) bool {
	if len(p.Holder) == 0 || len(p.Holder) > maxProofID || len(p.Requester) == 0 || len(p.Requester) > maxProofID || len(p.Sig) != 64 {
		return false
	}
	return subject.Verify(proofMessage(b, p.Holder, p.Requester), p.Sig)
}
