package integration

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ddc-project/ddc/node/gateway"
)

// BenchmarkTrustlessEntityBytes is a diagnosis of a 64 KiB entity-bytes
// CAR of a file the node holds, in-process (the figure that counts is
// 'go run ./integration/bench -suite trustless'): a ddc file (ddc's own
// walk) and a UnixFS file of 256 KiB leaves (car.UnixFSFile.WriteRange).
func BenchmarkTrustlessEntityBytes(b *testing.B) {
	n := startNode(b, nil)
	srv := gateway.New(n, gatewayOptions())
	b.Cleanup(func() { srv.Close() })
	gw := srv.Handler()
	fx := newDAGFixture()
	data := make([]byte, 16<<20)
	io.ReadFull(content(33, int64(len(data))), data)
	ufs, _ := fx.file(b, data, 256<<10)
	fx.importInto(b, n, ufs)
	ddcFile := putTagged(b, n, data)
	for _, tc := range []struct{ name, cid string }{{"ddc", ddcFile.String()}, {"unixfs", ufs.String()}} {
		b.Run(tc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				off := (i * 1000003) % (len(data) - 65536)
				i++
				req := httptest.NewRequest("GET", fmt.Sprintf("/ipfs/%s?format=car&dag-scope=entity&entity-bytes=%d:%d", tc.cid, off, off+65535), nil)
				req.Host = "localhost"
				w := httptest.NewRecorder()
				gw.ServeHTTP(w, req)
				if w.Code != http.StatusOK || w.Body.Len() < 65536 {
					b.Fatalf("%d, %d bytes", w.Code, w.Body.Len())
				}
			}
		})
	}
}
