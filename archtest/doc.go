// Package archtest holds tests that guard the code base's shape: every
// package has a doc comment, the core imports only the standard library,
// adapters do not import each other, and the binary builds static.
package archtest
