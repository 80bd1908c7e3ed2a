module rivetr.test/pushapp

go 1.22
