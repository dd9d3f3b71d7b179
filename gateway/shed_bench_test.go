package gateway_test

import (
	"bufio"
	"bytes"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/credgate/credgate/internal/testenv"
)

// BenchmarkShedRefusal measures one check refused for capacity (every slot
// held, no queue), as `credgate bench --phases overload` makes the server
// refuse thousands a second:
//
//   - handler: Server.Handler()'s ServeHTTP alone, the request and the
//     response writer reused, so what is timed and counted is the
//     gateway's own part of a refusal;
//   - served: the same over a real kept-alive loopback connection to an
//     http.Server, one request in flight as the bench sends them: net/http's
//     read, parse and write are in, and so are the client's write and read
//     (a raw connection that allocates nothing) and the loopback.
//
// Run: go test -run '^$' -bench BenchmarkShedRefusal -benchmem -count 6 ./gateway
func BenchmarkShedRefusal(b *testing.B) {
	srv, release := fullServer(b)
	h := srv.Handler()
	b.Cleanup(release)
	body := []byte(`{"subject":{"id":"914403001922038216"},"action":"government_procurement","reference":"credgate-bench"}`)
	const auth = "Bearer eyJhbGciOiJFZERTQSIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.eyJpc3MiOiJjcmVkZ2F0ZSJ9.c2lnbmF0dXJl"

	b.Run("handler", func(b *testing.B) {
		rd := bytes.NewReader(body)
		req, err := http.NewRequest(http.MethodPost, "http://127.0.0.1/v1/checks", rd)
		if err != nil {
			b.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", auth)
		w := &refusalWriter{header: http.Header{}}
		serve := func() {
			rd.Reset(body)
			clear(w.header)
			w.status = 0
			h.ServeHTTP(w, req)
			if w.status != http.StatusServiceUnavailable {
				b.Fatalf("status %d, want 503", w.status)
			}
		}
		serve()
		b.ReportAllocs()
		for b.Loop() {
			serve()
		}
	})

	// floor: net/http alone, answering the same bytes from a bare
	// handler; served minus floor is the gateway's part over the wire.
	refusal := []byte(`{"type":"https://credgate.example/problems/overloaded"}`)
	floor := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header()["Content-Type"] = []string{"application/problem+json"}
		w.Header()["Retry-After"] = []string{"1"}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write(refusal)
	})
	b.Run("served", func(b *testing.B) { benchServed(b, h, body, auth) })
	b.Run("floor", func(b *testing.B) { benchServed(b, floor, body, auth) })
}

// benchServed sends body to h over one kept-alive loopback connection,
// one request at a time, and reports the process's CPU per request
// (cpu-ns/op: server and client together) beside the wall time.
func benchServed(b *testing.B, h http.Handler, body []byte, auth string) {
	{
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		hs := &http.Server{Handler: h}
		go func() { _ = hs.Serve(ln) }()
		defer hs.Close()
		conn, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close()
		raw := []byte("POST /v1/checks HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: Go-http-client/1.1\r\n" +
			"Authorization: " + auth + "\r\nContent-Type: application/json\r\nContent-Length: " +
			strconv.Itoa(len(body)) + "\r\n\r\n" + string(body))
		rd := bufio.NewReaderSize(conn, 4096)
		buf := make([]byte, 4096)
		roundTrip := func() {
			if _, err := conn.Write(raw); err != nil {
				b.Fatal(err)
			}
			length := -1
			for {
				line, err := rd.ReadSlice('\n')
				if err != nil {
					b.Fatal(err)
				}
				if len(line) <= 2 {
					break
				}
				if v, ok := strings.CutPrefix(string(line), "Content-Length: "); ok {
					length, _ = strconv.Atoi(strings.TrimSpace(v))
				}
				if bytes.HasPrefix(line, []byte("HTTP/1.1 ")) && !bytes.HasPrefix(line, []byte("HTTP/1.1 503")) {
					b.Fatalf("answer %q", line)
				}
				if bytes.EqualFold(line, []byte("Connection: close\r\n")) {
					b.Fatal("the refusal closed the connection")
				}
			}
			if length < 0 {
				b.Fatal("no Content-Length")
			}
			if _, err := io.ReadFull(rd, buf[:length]); err != nil {
				b.Fatal(err)
			}
		}
		roundTrip()
		b.ReportAllocs()
		cpu0 := testenv.ProcessCPU(b)
		for b.Loop() {
			roundTrip()
		}
		b.ReportMetric(float64(testenv.ProcessCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// refusalWriter is a reusable http.ResponseWriter that keeps only the
// status: the benchmark times the handler, not a recorder.
type refusalWriter struct {
	header http.Header
	status int
}

func (w *refusalWriter) Header() http.Header { return w.header }
func (w *refusalWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
}

// WriteString as net/http's response has it (io.WriteString would copy
// to a []byte otherwise).
func (w *refusalWriter) WriteString(s string) (int, error) {
	_, _ = w.Write(nil)
	return len(s), nil
}

func (w *refusalWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return len(p), nil
}

// BenchmarkShedConnectionMemory opens b.N kept-alive connections, each
// refused once and left idle as the bench's pool leaves them, and reports
// what the server's side holds per connection: heap in use (net/http's
// connection state and its bufio buffers) and goroutine stacks, after a
// GC. The client's side is a raw connection with nothing buffered.
//
// Run: go test -run '^$' -bench BenchmarkShedConnectionMemory -benchtime 1024x ./gateway
func BenchmarkShedConnectionMemory(b *testing.B) {
	srv, release := fullServer(b)
	h := srv.Handler()
	b.Cleanup(release)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	var answered sync.WaitGroup
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer answered.Done()
		h.ServeHTTP(w, r)
	})}
	go func() { _ = hs.Serve(ln) }()
	defer hs.Close()
	body := `{"subject":{"id":"914403001922038216"},"action":"government_procurement"}`
	raw := "POST /v1/checks HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: " +
		strconv.Itoa(len(body)) + "\r\n\r\n" + body
	stats := func() (heap, stack uint64) {
		runtime.GC()
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		return m.HeapInuse, m.StackInuse
	}
	heap0, stack0 := stats()
	conns := make([]net.Conn, 0, b.N)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	answered.Add(b.N)
	for range b.N {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := io.WriteString(c, raw); err != nil {
			b.Fatal(err)
		}
	}
	answered.Wait()
	time.Sleep(100 * time.Millisecond) // the answers flushed, the connections back to reading
	heap1, stack1 := stats()
	b.ReportMetric(float64(heap1-heap0)/float64(b.N), "heap-B/conn")
	b.ReportMetric(float64(stack1-stack0)/float64(b.N), "stack-B/conn")
	b.ReportMetric(0, "ns/op")
}
