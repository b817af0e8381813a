package api

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"github.com/ipfs/go-cid"

	"github.com/ddc-project/ddc/node"
	"github.com/ddc-project/ddc/pieces/car"
)

// Imported is what POST /import returns.
type Imported struct {
	Roots  []string `json:"roots"`
	Blocks int      `json:"blocks"`
}

// ImportedOf reports an import, for the API and offline alike.
func ImportedOf(res node.ImportResult) Imported {
	out := Imported{Roots: []string{}, Blocks: len(res.Blocks)}
	for _, c := range res.Roots {
		out.Roots = append(out.Roots, c.String())
	}
	return out
}

// export serves GET /export/{cid}: a CAR of the file's DAG. Failures
// after the first bytes go in the X-Ddc-Error trailers, as for cat.
func (s *Server) export(w http.ResponseWriter, r *http.Request) {
	c, in, ok := s.cidIn(w, r)
	if !ok {
		return
	}
	h := w.Header()
	h.Set("Trailer", "X-Ddc-Error, X-Ddc-Error-Code")
	dw := &firstWrite{w: w, header: func() {
		h.Set("Content-Type", car.ContentType)
		w.WriteHeader(http.StatusOK)
	}}
	err := s.n.ExportCAR(r.Context(), dw, c, in)
	if err != nil && !dw.started {
		h.Del("Trailer")
		s.fail(w, err)
		return
	}
	if err != nil {
		code, _ := classify(err)
		h.Set("X-Ddc-Error", err.Error())
		h.Set("X-Ddc-Error-Code", code)
	}
}

// firstWrite calls header before the first bytes, so an export that
// fails before any can still answer with its error status.
type firstWrite struct {
	w       io.Writer
	header  func()
	started bool
}

func (f *firstWrite) Write(b []byte) (int, error) {
	if !f.started {
		f.started = true
		f.header()
	}
	return f.w.Write(b)
}

// importCAR serves POST /import: the body is a CAR to store and pin.
func (s *Server) importCAR(w http.ResponseWriter, r *http.Request) {
	res, err := s.n.ImportCAR(r.Body)
	if err != nil {
		s.fail(w, err)
		return
	}
	s.reply(w, ImportedOf(res))
}

// Export writes a CAR of the DAG under k to w.
func (c *Client) Export(ctx context.Context, k cid.Cid, w io.Writer) error {
	resp, err := c.do(ctx, http.MethodGet, "/export/"+k.String(), nil, nil, -1)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(w, resp.Body); err != nil {
		return err
	}
	if t := resp.Trailer; t.Get("X-Ddc-Error") != "" {
		return &Error{Code: t.Get("X-Ddc-Error-Code"), Message: t.Get("X-Ddc-Error")}
	}
	return nil
}

// Import sends the CAR r to the node to store and pin.
func (c *Client) Import(ctx context.Context, r io.Reader) (Imported, error) {
	resp, err := c.do(ctx, http.MethodPost, "/import", nil, r, -1)
	if err != nil {
		return Imported{}, err
	}
	defer resp.Body.Close()
	var out Imported
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return Imported{}, errors.New("node API /import: bad reply: " + err.Error())
	}
	return out, nil
}
