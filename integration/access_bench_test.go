package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/ddc-project/ddc/bucket"
	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/node/gateway"
	noderepo "github.com/ddc-project/ddc/node/repo"
	"github.com/ddc-project/ddc/pieces"
)

// BenchmarkGatewayHeldRange is a diagnosis of what the access rule costs
// a gateway's 64 KiB range of a file its node holds, in-process (the
// figure that counts is 'go run ./integration/bench -suite access'):
// public, and of a private bucket with a bearer grant, on a node that
// read both for a gateway client first (its owner's node is another).
func BenchmarkGatewayHeldRange(b *testing.B) {
	owner := startNode(b, nil)
	n := owner
	key, _ := noderepo.AccountOf(n.Repo().Identity)
	rec, _ := bucket.NewRecord(key, "default", true, "")
	bs, _ := noderepo.Buckets(n.Repo().Path)
	bs.Keep(rec)
	data := bytes.Repeat([]byte("0123456789abcdef"), 8<<16) // 8 MiB
	put := func(in *node.In) string {
		res, err := n.PutIn(context.Background(), bytes.NewReader(data), pieces.DefaultBuildOptions(), in)
		if err != nil {
			b.Fatal(err)
		}
		return res.Root.String()
	}
	pub := put(nil)
	data[0] ^= 1
	priv := put(&node.In{Bucket: rec.Bucket})
	tok, _ := bucket.NewGrant(key, rec.Bucket, nil, bucket.OpGet, time.Now().Add(time.Hour), false, time.Now())
	n = startNode(b, nil, owner)
	waitFor(b, "the owner to publish its bucket", 30*time.Second, func() bool {
		_, err := owner.PublishBucket(context.Background(), rec.Bucket)
		return err == nil
	})
	for _, r := range []struct {
		c  string
		in *node.In
	}{{pub, &node.In{Guest: true}}, {priv, &node.In{Guest: true, Bucket: rec.Bucket, Token: tok.String()}}} {
		rd, err := n.OpenIn(context.Background(), mustCID(b, r.c), r.in)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, rd); err != nil {
			b.Fatal(err)
		}
		rd.Close()
	}
	gw := gateway.New(n, gatewayOptions())
	b.Cleanup(func() { gw.Close() })
	h := gw.Handler()
	for _, tc := range []struct{ name, url string }{
		{"public", "/ddc/file/" + pub},
		{"granted", "/ddc/buc/" + rec.Bucket.String() + "/file/" + priv + "?token=" + tok.String()},
	} {
		b.Run(tc.name, func(b *testing.B) {
			i := 0
			for b.Loop() {
				req := httptest.NewRequest("GET", tc.url, nil)
				req.Host = "localhost"
				off := (i * 1000003) % (len(data) - 65536)
				req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", off, off+65535))
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusPartialContent || w.Body.Len() != 65536 {
					b.Fatalf("%d, %d bytes", w.Code, w.Body.Len())
				}
				i++
			}
		})
	}
}
