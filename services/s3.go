package services

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"
)

// s3Client is the part of the S3 API backups use (PUT, GET, ListObjectsV2)
// on any S3-compatible endpoint, path-style, signed with AWS Signature
// Version 4. A backup is one PUT (up to the 5 GB S3 allows in one).
type s3Client struct {
	endpoint       *url.URL
	access, secret string
	region         string
	hc             *http.Client
	now            func() time.Time
}

func newS3(endpoint, access, secret, region string) (*s3Client, error) {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("invalid S3 endpoint %q: want http(s)://host[:port]", endpoint)
	}
	if region == "" {
		region = "us-east-1"
	}
	return &s3Client{endpoint: u, access: access, secret: secret, region: region,
		hc: &http.Client{Timeout: 30 * time.Minute}, now: time.Now}, nil
}

func (c *s3Client) objectURL(bucket, key string, query url.Values) *url.URL {
	u := *c.endpoint
	u.Path = strings.TrimSuffix(u.Path, "/") + "/" + bucket
	if key != "" {
		u.Path += "/" + key
	}
	u.RawQuery = query.Encode()
	return &u
}

// do signs and sends a request; payloadHash is the body's hex SHA-256.
func (c *s3Client) do(ctx context.Context, method string, u *url.URL, body io.Reader, size int64, payloadHash string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.ContentLength = size
	}
	c.sign(req, payloadHash)
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("S3 %s %s: %w", method, u.Path, err)
	}
	if resp.StatusCode/100 != 2 {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		var e struct{ Code, Message string }
		xml.Unmarshal(msg, &e)
		return nil, fmt.Errorf("S3 %s %s: %s %s %s", method, u.Path, resp.Status, e.Code, e.Message)
	}
	return resp, nil
}

// sign adds the SigV4 headers.
func (c *s3Client) sign(req *http.Request, payloadHash string) {
	t := c.now().UTC()
	amzDate := t.Format("20060102T150405Z")
	day := t.Format("20060102")
	req.Header.Set("X-Amz-Date", amzDate)
	req.Header.Set("X-Amz-Content-Sha256", payloadHash)
	host := req.URL.Host
	headers := map[string]string{"host": host, "x-amz-content-sha256": payloadHash, "x-amz-date": amzDate}
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	var canonHeaders strings.Builder
	for _, k := range names {
		canonHeaders.WriteString(k + ":" + headers[k] + "\n")
	}
	signed := strings.Join(names, ";")
	canonical := strings.Join([]string{
		req.Method, escapePath(req.URL.EscapedPath()), canonicalQuery(req.URL.Query()),
		canonHeaders.String(), signed, payloadHash,
	}, "\n")
	scope := day + "/" + c.region + "/s3/aws4_request"
	sum := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
	key := hmacSHA256([]byte("AWS4"+c.secret), day)
	key = hmacSHA256(key, c.region)
	key = hmacSHA256(key, "s3")
	key = hmacSHA256(key, "aws4_request")
	sig := hex.EncodeToString(hmacSHA256(key, toSign))
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+c.access+"/"+scope+", SignedHeaders="+signed+", Signature="+sig)
}

func hmacSHA256(key []byte, s string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(s))
	return h.Sum(nil)
}

// escapePath is the canonical URI: the path as sent (already escaped).
func escapePath(p string) string {
	if p == "" {
		return "/"
	}
	return p
}

func canonicalQuery(q url.Values) string {
	keys := make([]string, 0, len(q))
	for k := range q {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		vs := q[k]
		sort.Strings(vs)
		for _, v := range vs {
			parts = append(parts, awsEscape(k)+"="+awsEscape(v))
		}
	}
	return strings.Join(parts, "&")
}

// awsEscape is RFC 3986 escaping as SigV4 wants it.
func awsEscape(s string) string {
	return strings.ReplaceAll(url.QueryEscape(s), "+", "%20")
}

const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// put uploads body (size bytes, SHA-256 hash) to bucket/key.
func (c *s3Client) put(ctx context.Context, bucket, key string, body io.Reader, size int64, hash string) error {
	resp, err := c.do(ctx, http.MethodPut, c.objectURL(bucket, key, nil), body, size, hash)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// get downloads bucket/key.
func (c *s3Client) get(ctx context.Context, bucket, key string) (io.ReadCloser, error) {
	resp, err := c.do(ctx, http.MethodGet, c.objectURL(bucket, key, nil), nil, 0, emptySHA256)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// s3Object is one entry of a listing.
type s3Object struct {
	Key          string    `xml:"Key"`
	Size         int64     `xml:"Size"`
	LastModified time.Time `xml:"LastModified"`
}

// list returns the objects under prefix (up to 1000, as one page).
func (c *s3Client) list(ctx context.Context, bucket, prefix string) ([]s3Object, error) {
	q := url.Values{"list-type": {"2"}, "prefix": {prefix}}
	resp, err := c.do(ctx, http.MethodGet, c.objectURL(bucket, "", q), nil, 0, emptySHA256)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Contents []s3Object `xml:"Contents"`
	}
	if err := xml.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("S3 list %s: %w", bucket, err)
	}
	return out.Contents, nil
}
