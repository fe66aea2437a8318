// Package zerocopy serves a file over TCP two ways, to measure what the
// article's sendfile section claims: io.Copy from an *os.File to a
// *net.TCPConn, which Go turns into sendfile(2) on Linux (the file's pages go
// from the page cache to the socket without passing through the process),
// and a read/write loop through a user-space buffer (two copies and two
// system calls per buffer).
//
// On loopback there is no NIC and no DMA: what the comparison measures is
// the copy into and out of user space and the system calls saved. Kafka
// gets the same saving only for plaintext listeners and consumers that read
// the on-disk format; TLS has to encrypt in user space.
package zerocopy

import (
	"errors"
	"io"
	"net"
	"os"
)

// Mode is how a file is sent.
type Mode int

// The two ways.
const (
	Sendfile  Mode = iota // io.Copy(conn, file): sendfile(2) on Linux
	ReadWrite             // read into a buffer, write it out
)

func (m Mode) String() string {
	if m == Sendfile {
		return "sendfile"
	}
	return "read/write"
}

// BufferSize is the user-space loop's buffer, io.Copy's default.
const BufferSize = 32 << 10

// Send writes the whole file at path to conn and returns the bytes sent.
func Send(conn net.Conn, path string, m Mode) (int64, error) {
	if m == Sendfile {
		f, err := os.Open(path)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		return io.Copy(conn, f) // *net.TCPConn.ReadFrom(*os.File): sendfile
	}
	return SendBuffer(conn, path, make([]byte, BufferSize))
}

// SendBuffer writes the whole file at path to conn through buf: a read
// into it, a write out of it, until the end of the file.
func SendBuffer(conn net.Conn, path string, buf []byte) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	var n int64
	for {
		r, err := f.Read(buf)
		if r > 0 {
			w, werr := conn.Write(buf[:r])
			n += int64(w)
			if werr != nil {
				return n, werr
			}
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Serve accepts connections on ln and sends each one the file at path,
// then closes it, until ln is closed.
func Serve(ln net.Listener, path string, m Mode) error {
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			return err
		}
		_, err = Send(c, path, m)
		_ = c.Close()
		if err != nil {
			return err
		}
	}
}
