package booktest

// TextPayload is the text payload of n bytes that the pages of chapters 04
// and 05 send (their index.html, region payloads): a, b, c ... z repeated.
func TextPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = 'a' + byte(i%26)
	}
	return p
}

// BinaryPayload is the binary payload of n bytes that the same pages send:
// byte i is (7i + 3) mod 256.
func BinaryPayload(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(7*i + 3)
	}
	return p
}

// NeverEnding is a reader that produces the same byte forever: a client
// that never stops sending, for tests of a server's limits.
type NeverEnding byte

func (b NeverEnding) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(b)
	}
	return len(p), nil
}
