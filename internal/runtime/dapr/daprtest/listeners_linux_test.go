package daprtest_test

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// checkLoopbackOnly fails the test if the process pid listens on TCP, or has
// a bound UDP socket, at an address other than loopback.
func checkLoopbackOnly(t *testing.T, name string, pid int) {
	t.Helper()
	inodes := map[string]bool{}
	fds, err := filepath.Glob(fmt.Sprintf("/proc/%d/fd/*", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		if link, err := os.Readlink(fd); err == nil && strings.HasPrefix(link, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(link, "socket:["), "]")] = true
		}
	}
	listening := 0
	for _, table := range []struct{ path, state string }{
		{"/proc/net/tcp", "0A"}, {"/proc/net/tcp6", "0A"}, // LISTEN
		{"/proc/net/udp", "07"}, {"/proc/net/udp6", "07"}, // bound, not connected
	} {
		for _, s := range sockets(t, table.path, table.state) {
			if !inodes[s.inode] {
				continue
			}
			listening++
			if !s.ip.IsLoopback() {
				t.Errorf("%s listens on %s %s, want loopback only", name,
					filepath.Base(table.path), net.JoinHostPort(s.ip.String(), strconv.Itoa(s.port)))
			}
		}
	}
	if listening == 0 {
		t.Errorf("%s (pid %d) listens on no port", name, pid)
	}
}

type socket struct {
	ip    net.IP
	port  int
	inode string
}

// sockets parses the sockets in state from a /proc/net table.
func sockets(t *testing.T, path, state string) []socket {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return nil
		}
		t.Fatal(err)
	}
	defer f.Close()
	var out []socket
	sc := bufio.NewScanner(f)
	sc.Scan() // header
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 10 || fields[3] != state {
			continue
		}
		hostHex, portHex, _ := strings.Cut(fields[1], ":")
		raw, err := hex.DecodeString(hostHex)
		if err != nil || len(raw)%4 != 0 {
			t.Fatalf("%s: bad address %q", path, fields[1])
		}
		// The kernel prints each 32-bit word in host (little-endian) order.
		ip := make(net.IP, len(raw))
		for i := 0; i < len(raw); i += 4 {
			ip[i], ip[i+1], ip[i+2], ip[i+3] = raw[i+3], raw[i+2], raw[i+1], raw[i]
		}
		port, err := strconv.ParseInt(portHex, 16, 32)
		if err != nil {
			t.Fatalf("%s: bad port %q", path, fields[1])
		}
		out = append(out, socket{ip: ip, port: int(port), inode: fields[9]})
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
