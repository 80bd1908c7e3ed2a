package services

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/crypto/scrypt"
)

// Encrypted backups: a header (magic, scrypt salt) and the dump in chunks
// of up to 64 KiB, each sealed with AES-256-GCM under a key derived from
// the passphrase; a chunk's nonce is its number and a last-chunk flag, so
// reordered, dropped or truncated chunks fail to open.

const (
	cryptMagic = "RIVETRBK1\n"
	chunkSize  = 64 << 10
)

func deriveKey(passphrase string, salt []byte) (cipher.AEAD, error) {
	key, err := scrypt.Key([]byte(passphrase), salt, 1<<15, 8, 1, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func chunkNonce(n uint64, last bool) []byte {
	nonce := make([]byte, 12)
	binary.BigEndian.PutUint64(nonce, n)
	if last {
		nonce[11] = 1
	}
	return nonce
}

// encrypt copies r to w encrypted with passphrase.
func encrypt(w io.Writer, r io.Reader, passphrase string) error {
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return err
	}
	aead, err := deriveKey(passphrase, salt)
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, cryptMagic); err != nil {
		return err
	}
	if _, err := w.Write(salt); err != nil {
		return err
	}
	br := bufio.NewReaderSize(r, chunkSize)
	buf := make([]byte, chunkSize)
	for n := uint64(0); ; n++ {
		k, err := io.ReadFull(br, buf)
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
			return err
		}
		_, peekErr := br.Peek(1)
		last := peekErr != nil
		sealed := aead.Seal(nil, chunkNonce(n, last), buf[:k], nil)
		var size [4]byte
		binary.BigEndian.PutUint32(size[:], uint32(len(sealed)))
		if _, err := w.Write(size[:]); err != nil {
			return err
		}
		if _, err := w.Write(sealed); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}

// decrypt copies an encrypted backup from r to w.
func decrypt(w io.Writer, r io.Reader, passphrase string) error {
	head := make([]byte, len(cryptMagic)+16)
	if _, err := io.ReadFull(r, head); err != nil || string(head[:len(cryptMagic)]) != cryptMagic {
		return errors.New("not an encrypted rivetr backup")
	}
	aead, err := deriveKey(passphrase, head[len(cryptMagic):])
	if err != nil {
		return err
	}
	for n := uint64(0); ; n++ {
		var size [4]byte
		if _, err := io.ReadFull(r, size[:]); err != nil {
			return errors.New("encrypted backup is truncated")
		}
		l := binary.BigEndian.Uint32(size[:])
		if l > chunkSize+uint32(aead.Overhead()) {
			return errors.New("encrypted backup is corrupt")
		}
		sealed := make([]byte, l)
		if _, err := io.ReadFull(r, sealed); err != nil {
			return errors.New("encrypted backup is truncated")
		}
		plain, err := aead.Open(nil, chunkNonce(n, false), sealed, nil)
		last := false
		if err != nil {
			if plain, err = aead.Open(nil, chunkNonce(n, true), sealed, nil); err != nil {
				return fmt.Errorf("cannot decrypt the backup (wrong passphrase, or the file is corrupt)")
			}
			last = true
		}
		if _, err := w.Write(plain); err != nil {
			return err
		}
		if last {
			return nil
		}
	}
}
