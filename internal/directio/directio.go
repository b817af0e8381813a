// Package directio holds what writing with O_DIRECT asks of buffers: their
// alignment, and buffers that meet it.
package directio

import "unsafe"

// Alignment is what O_DIRECT asks of offsets, lengths and buffer
// addresses: 4 KiB covers 512-byte and 4 KiB sector devices.
const Alignment = 4096

// Buffer returns n bytes whose first byte sits on an Alignment boundary.
func Buffer(n int) []byte {
	b := make([]byte, n+Alignment)
	skip := (Alignment - int(uintptr(unsafe.Pointer(&b[0]))%Alignment)) % Alignment
	return b[skip : skip+n : skip+n]
}

// Pad rounds n up to a whole number of Alignment blocks.
func Pad(n int) int { return (n + Alignment - 1) &^ (Alignment - 1) }
