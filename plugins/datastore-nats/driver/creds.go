package driver

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// inboxPrefix is the tenant's private request-reply inbox. NATS's default, _INBOX., is shared by
// everyone: a user allowed to subscribe to it would read other tenants' JetStream replies.
func inboxPrefix(bucket string) string { return "_INBOX_" + bucket }

// tenantPermissions is what kine needs on its bucket and nothing else: the bucket's KV
// subjects, the JetStream API calls on its stream (info, create with kine's configuration, get
// messages, consumers to watch it), acknowledgements and flow control of those consumers, and
// replies on the tenant's own inbox. No stream deletion, update or purge, no other stream.
func tenantPermissions(bucket string) jwt.Permissions {
	stream := "KV_" + bucket
	return jwt.Permissions{
		Pub: jwt.Permission{Allow: jwt.StringList{
			"$JS.API.INFO",
			"$JS.API.STREAM.INFO." + stream,
			"$JS.API.STREAM.CREATE." + stream,
			"$JS.API.STREAM.MSG.GET." + stream,
			"$JS.API.DIRECT.GET." + stream,
			"$JS.API.DIRECT.GET." + stream + ".>",
			"$JS.API.CONSUMER.CREATE." + stream,
			"$JS.API.CONSUMER.CREATE." + stream + ".>",
			"$JS.API.CONSUMER.DELETE." + stream + ".>",
			"$JS.API.CONSUMER.INFO." + stream + ".>",
			"$JS.API.CONSUMER.MSG.NEXT." + stream + ".>",
			"$KV." + bucket + ".>",
			"$JS.ACK." + stream + ".>",
			"$JS.FC." + stream + ".>",
		}},
		Sub: jwt.Permission{Allow: jwt.StringList{inboxPrefix(bucket) + ".>"}},
	}
}

// tenantCredentials returns the tenant's NATS credentials file (user JWT and seed). Both are
// deterministic: the user's key is derived from the account key and the bucket, and the JWT is
// signed with a fixed issue time, so EnsureTenant returns the same credentials every time
// without storing them. The user never expires: decentralized authentication has no server-side
// user to delete, and a NATS account can only revoke it through its operator.
func (s *settings) tenantCredentials(bucket, username string) ([]byte, error) {
	m := hmac.New(sha256.New, s.signerSeed)
	m.Write([]byte("kamaji-datastore-nats/tenant-user/v1\x00" + s.account + "\x00" + bucket))
	ukp, err := nkeys.FromRawSeed(nkeys.PrefixByteUser, m.Sum(nil))
	if err != nil {
		return nil, err
	}
	upub, err := ukp.PublicKey()
	if err != nil {
		return nil, err
	}
	useed, err := ukp.Seed()
	if err != nil {
		return nil, err
	}
	uc := jwt.NewUserClaims(upub)
	uc.Name = username
	uc.Permissions = tenantPermissions(bucket)
	if pub, _ := s.signer.PublicKey(); pub != s.account {
		uc.IssuerAccount = s.account
	}
	tok, err := encodeDeterministic(uc, s.signer)
	if err != nil {
		return nil, err
	}
	return jwt.FormatUserConfig(tok, useed)
}

// encodeDeterministic signs uc as jwt.UserClaims.Encode does, except that the issue time is
// fixed (zero) instead of now: ed25519 signatures are deterministic, so the token is too.
func encodeDeterministic(uc *jwt.UserClaims, kp nkeys.KeyPair) (string, error) {
	issuer, err := kp.PublicKey()
	if err != nil {
		return "", err
	}
	uc.Type = jwt.UserClaim
	uc.Version = 2
	uc.Issuer = issuer
	uc.IssuedAt = 0
	uc.ID = ""
	cd, err := json.Marshal(uc.ClaimsData)
	if err != nil {
		return "", err
	}
	sum := sha512.Sum512_256(cd)
	uc.ID = base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(sum[:])
	header, err := json.Marshal(jwt.Header{Type: jwt.TokenTypeJwt, Algorithm: jwt.AlgorithmNkey})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(uc)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding.EncodeToString
	toSign := enc(header) + "." + enc(payload)
	sig, err := kp.Sign([]byte(toSign))
	if err != nil {
		return "", err
	}
	tok := toSign + "." + enc(sig)
	// Let the library check what it would have produced.
	if _, err := jwt.DecodeUserClaims(tok); err != nil {
		return "", err
	}
	return tok, nil
}
