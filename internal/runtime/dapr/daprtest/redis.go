package daprtest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// redisReadyTimeout bounds how long StartRedis waits for PONG.
const redisReadyTimeout = 20 * time.Second

// Redis is a redis-server started for one test, without persistence.
type Redis struct {
	// Addr is host:port, for components' redisHost.
	Addr string
	Port int

	*process // Stop, Kill, Exited, PID, Logs
}

// StartRedis starts redis-server on a free 127.0.0.1 port with persistence
// off, in a temporary directory, and waits until it answers PING. The server
// stops when the test ends.
func StartRedis(t testing.TB) *Redis {
	t.Helper()
	tools := FindTools(t)
	dir := t.TempDir()
	proc, ports := start(t, "redis-server", 1, redisReadyTimeout,
		func(ports []int) (*process, error) {
			return startProcess("redis-server", dir, nil, tools.RedisServer,
				"--port", strconv.Itoa(ports[0]),
				"--bind", "127.0.0.1",
				"--save", "",
				"--appendonly", "no",
				"--dir", dir,
				"--daemonize", "no",
				"--logfile", "",
			)
		},
		func(_ *process, ports []int) error {
			return redisPing(net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])))
		})
	return &Redis{Addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0])), Port: ports[0], process: proc}
}

// Ping sends PING and reports an error unless the answer is PONG.
func (r *Redis) Ping() error { return redisPing(r.Addr) }

// redisPing speaks just enough RESP to send PING and read "+PONG".
func redisPing(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("redis answered PING with %q", line)
	}
	return nil
}

// Keys returns the keys matching pattern (Redis KEYS: for tests' small data
// sets only).
func (r *Redis) Keys(pattern string) ([]string, error) {
	conn, err := net.DialTimeout("tcp", r.Addr, time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return nil, err
	}
	if _, err := fmt.Fprintf(conn, "*2\r\n$4\r\nKEYS\r\n$%d\r\n%s\r\n", len(pattern), pattern); err != nil {
		return nil, err
	}
	rd := bufio.NewReader(conn)
	n, err := readHeader(rd, '*')
	if err != nil {
		return nil, err
	}
	keys := make([]string, 0, n)
	for range n {
		size, err := readHeader(rd, '$')
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size+2)
		if _, err := io.ReadFull(rd, buf); err != nil {
			return nil, err
		}
		keys = append(keys, string(buf[:size]))
	}
	return keys, nil
}

// readLine reads one RESP line without its CRLF.
// readHeader reads a RESP header line, kind ('*' array, '$' bulk string)
// followed by a length, and returns the length.
func readHeader(rd *bufio.Reader, kind byte) (int, error) {
	line, err := readLine(rd)
	if err != nil {
		return 0, err
	}
	if len(line) == 0 || line[0] != kind {
		return 0, fmt.Errorf("redis sent %q in a KEYS answer, want a %q header", line, kind)
	}
	n, err := strconv.Atoi(line[1:])
	if err != nil || n < 0 {
		return 0, fmt.Errorf("redis sent %q in a KEYS answer", line)
	}
	return n, nil
}

func readLine(rd *bufio.Reader) (string, error) {
	line, err := rd.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(line, "\r\n"), nil
}
