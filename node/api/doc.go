// Package api is the node's HTTP API on a loopback address, and the client
// the CLI uses to reach it. Bodies stream both ways: a put sends the file
// as the request body, a cat receives it as the response body, and neither
// side holds a whole file in memory. Errors are JSON with a code the CLI
// maps to its exit status; an error found after a response's bytes began
// arrives in the X-Ddc-Error trailer.
//
// Routes (all under /api/v1):
//
//	GET  /id                 peer ID, addresses, cluster, announce status
//	GET  /peers              connected peers
//	POST /connect?addr=MA    dial a peer
//	GET  /providers/{cid}    holders from the DHT, one JSON object per line
//	POST /put?tag=K=V&chunk=N&inline=N&hash=NAME&chunker=fixed|cdc   body: the file
//	GET  /cat/{cid}?offset=N&length=N&pin=true     the file's bytes
//	GET  /stat/{cid}         descriptor summary
//	POST /rm/{cid}?bucket=ID delete a file from a bucket, here and at its keepers
//	GET  /holders/{cid}      each piece's providers, then the file's keepers (JSON lines)
//	GET  /ls                 pinned files
//	GET  /downloads          downloads in progress: bytes and holders
package api
