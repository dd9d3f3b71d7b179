package testenv

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"
)

// RedisAddr is the shared Redis that integration tests use. Tests key
// everything under a prefix (or database) of their own and never flush it.
const RedisAddr = "127.0.0.1:6379"

// Redis returns the URL of the shared Redis after a PING, or calls Need
// when it does not answer.
func Redis(tb testing.TB) string {
	tb.Helper()
	c, err := net.DialTimeout("tcp", RedisAddr, time.Second)
	if err == nil {
		defer c.Close()
		fmt.Fprint(c, "PING\r\n")
		_ = c.SetReadDeadline(time.Now().Add(time.Second))
		var line string
		if line, err = bufio.NewReader(c).ReadString('\n'); err == nil && line != "+PONG\r\n" {
			err = fmt.Errorf("answered %q", line)
		}
	}
	if err != nil {
		Need(tb, "Redis not reachable at %s: %v", RedisAddr, err)
	}
	return "redis://" + RedisAddr + "/0"
}

// FreeAddr returns host:port on 127.0.0.1 that nothing listened on a
// moment ago (FreePort as an address).
func FreeAddr(tb testing.TB) string {
	tb.Helper()
	return fmt.Sprintf("127.0.0.1:%d", FreePort(tb))
}

// Token obtains an access token from credgate at base with a client's
// id and secret (the client credentials grant), failing tb otherwise.
func Token(tb testing.TB, base, id, secret string) string {
	tb.Helper()
	res, err := http.PostForm(base+"/v1/oauth/token", url.Values{"grant_type": {"client_credentials"}, "client_id": {id}, "client_secret": {secret}})
	if err != nil {
		tb.Fatal(err)
	}
	defer res.Body.Close()
	var m struct {
		Token string `json:"access_token"`
	}
	b, _ := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if json.Unmarshal(b, &m) != nil || m.Token == "" {
		tb.Fatalf("token for %s: %d %s", id, res.StatusCode, b)
	}
	return m.Token
}
