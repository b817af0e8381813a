package pieces_test

import (
	"context"
	"math/rand/v2"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/pieces"
)

// memStore is a test Getter/Putter that verifies everything it stores.
type memStore struct {
	mu   sync.Mutex
	m    map[cid.Cid][]byte
	puts int
}

func newMemStore() *memStore { return &memStore{m: make(map[cid.Cid][]byte)} }

func (s *memStore) PutPiece(c cid.Cid, data []byte) error {
	if err := pieces.Verify(c, data); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[c] = append([]byte(nil), data...)
	s.puts++
	return nil
}

func (s *memStore) GetPiece(_ context.Context, c cid.Cid) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[c]
	if !ok {
		return nil, &pieces.NotFoundError{CID: c}
	}
	return b, nil
}

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// readerStore adds ReadPiece, so readers take the buffer-reusing path.
type readerStore struct{ *memStore }

func (s readerStore) ReadPiece(ctx context.Context, c cid.Cid, buf []byte) ([]byte, error) {
	b, err := s.GetPiece(ctx, c)
	if err != nil {
		return nil, err
	}
	return append(buf[:0], b...), nil
}
