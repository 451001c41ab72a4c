package giftwrap

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"strings"
	"testing"
	_ "unsafe" // go:linkname, below

	"github.com/nbd-wtf/go-nostr"
	"github.com/nbd-wtf/go-nostr/nip44"
)

// The official NIP-44 v2 vectors, from the team's shared test data (not copied here).
const vectorsPath = "../../../shared/testdata/nip44/nip44.vectors.json"

// The vectors for padding and message keys test functions nip44 does not export; they
// are reached by name. Pinned go-nostr v0.52.3: a rename fails the link loudly, never
// silently. Each is also checked through the exported Encrypt where that is possible.
//
//go:linkname nip44CalcPadding github.com/nbd-wtf/go-nostr/nip44.calcPadding
func nip44CalcPadding(sLen int) int

//go:linkname nip44MessageKeys github.com/nbd-wtf/go-nostr/nip44.messageKeys
func nip44MessageKeys(conversationKey [32]byte, nonce [32]byte) ([]byte, []byte, []byte, error)

type vectorFile struct {
	V2 struct {
		Valid struct {
			GetConversationKey []struct {
				Sec1            string `json:"sec1"`
				Pub2            string `json:"pub2"`
				ConversationKey string `json:"conversation_key"`
			} `json:"get_conversation_key"`
			GetMessageKeys struct {
				ConversationKey string `json:"conversation_key"`
				Keys            []struct {
					Nonce       string `json:"nonce"`
					ChachaKey   string `json:"chacha_key"`
					ChachaNonce string `json:"chacha_nonce"`
					HmacKey     string `json:"hmac_key"`
				} `json:"keys"`
			} `json:"get_message_keys"`
			CalcPaddedLen  [][2]int `json:"calc_padded_len"`
			EncryptDecrypt []struct {
				Sec1            string `json:"sec1"`
				Sec2            string `json:"sec2"`
				ConversationKey string `json:"conversation_key"`
				Nonce           string `json:"nonce"`
				Plaintext       string `json:"plaintext"`
				Payload         string `json:"payload"`
			} `json:"encrypt_decrypt"`
			EncryptDecryptLongMsg []struct {
				ConversationKey string `json:"conversation_key"`
				Nonce           string `json:"nonce"`
				Pattern         string `json:"pattern"`
				Repeat          int    `json:"repeat"`
				PlaintextSHA256 string `json:"plaintext_sha256"`
				PayloadSHA256   string `json:"payload_sha256"`
			} `json:"encrypt_decrypt_long_msg"`
		} `json:"valid"`
		Invalid struct {
			EncryptMsgLengths  []int `json:"encrypt_msg_lengths"`
			GetConversationKey []struct {
				Sec1 string `json:"sec1"`
				Pub2 string `json:"pub2"`
				Note string `json:"note"`
			} `json:"get_conversation_key"`
			Decrypt []struct {
				ConversationKey string `json:"conversation_key"`
				Payload         string `json:"payload"`
				Note            string `json:"note"`
			} `json:"decrypt"`
		} `json:"invalid"`
	} `json:"v2"`
}

func mustHex32(t *testing.T, s string) [32]byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		t.Fatalf("vector hex %q: %v", s, err)
	}
	return [32]byte(b)
}

func TestNIP44OfficialVectors(t *testing.T) {
	raw, err := os.ReadFile(vectorsPath)
	if err != nil {
		t.Fatalf("the shared NIP-44 vectors are missing: %v", err)
	}
	sum := sha256.Sum256(raw)
	if got := hex.EncodeToString(sum[:]); got != "269ed0f69e4c192512cc779e78c555090cebc7c785b609e338a62afc3ce25040" {
		t.Fatalf("vector file sha256 %s differs from the one published in NIP-44", got)
	}
	var vf vectorFile
	if err := json.Unmarshal(raw, &vf); err != nil {
		t.Fatal(err)
	}
	// Count the vectors from the file's own structure, independently of the typed decode.
	var generic map[string]map[string]map[string]json.RawMessage
	if err := json.Unmarshal(raw, &generic); err != nil {
		t.Fatal(err)
	}
	inFile := 0
	for _, group := range generic["v2"] {
		for name, list := range group {
			if name == "get_message_keys" {
				var mk struct{ Keys []json.RawMessage }
				_ = json.Unmarshal(list, &mk)
				inFile += len(mk.Keys)
				continue
			}
			var items []json.RawMessage
			_ = json.Unmarshal(list, &items)
			inFile += len(items)
		}
	}
	if inFile != 128 {
		t.Fatalf("the file holds %d vectors, the team brief says 128", inFile)
	}

	ran := 0
	v := vf.V2.Valid

	for _, c := range v.GetConversationKey {
		ck, err := nip44.GenerateConversationKey(c.Pub2, c.Sec1)
		if err != nil || hex.EncodeToString(ck[:]) != c.ConversationKey {
			t.Errorf("get_conversation_key sec1=%s: %x, %v; want %s", c.Sec1, ck, err, c.ConversationKey)
		}
		ran++
	}

	mkCK := mustHex32(t, v.GetMessageKeys.ConversationKey)
	for _, c := range v.GetMessageKeys.Keys {
		nonce := mustHex32(t, c.Nonce)
		key, cnonce, hkey, err := nip44MessageKeys(mkCK, nonce)
		if err != nil || hex.EncodeToString(key) != c.ChachaKey || hex.EncodeToString(cnonce) != c.ChachaNonce || hex.EncodeToString(hkey) != c.HmacKey {
			t.Errorf("get_message_keys nonce=%s: %x %x %x %v", c.Nonce, key, cnonce, hkey, err)
		}
		// Through the exported path: Encrypt with this nonce must MAC with this hmac_key.
		payload, err := nip44.Encrypt("pow.do", mkCK, nip44.WithCustomNonce(nonce[:]))
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := base64.StdEncoding.DecodeString(payload)
		hk, _ := hex.DecodeString(c.HmacKey)
		mac := hmac.New(sha256.New, hk)
		mac.Write(raw[1:33])
		mac.Write(raw[33 : len(raw)-32])
		if !bytes.Equal(raw[1:33], nonce[:]) || !hmac.Equal(mac.Sum(nil), raw[len(raw)-32:]) {
			t.Errorf("get_message_keys nonce=%s: Encrypt did not use hmac_key %s", c.Nonce, c.HmacKey)
		}
		ran++
	}

	anyCK := mustHex32(t, v.EncryptDecrypt[0].ConversationKey)
	for _, c := range v.CalcPaddedLen {
		unpadded, padded := c[0], c[1]
		if got := nip44CalcPadding(unpadded); got != padded {
			t.Errorf("calc_padded_len(%d) = %d, want %d", unpadded, got, padded)
		}
		// Through Encrypt where go-nostr can encrypt that length: the payload is
		// version(1) + nonce(32) + length(2) + padded + mac(32).
		if unpadded <= nip44.MaxPlaintextSize {
			payload, err := nip44.Encrypt(strings.Repeat("p", unpadded), anyCK)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := base64.StdEncoding.DecodeString(payload)
			if got := len(raw) - 67; got != padded {
				t.Errorf("Encrypt of %d bytes padded to %d, want %d", unpadded, got, padded)
			}
		}
		ran++
	}

	for _, c := range v.EncryptDecrypt {
		pub2, _ := nostr.GetPublicKey(c.Sec2)
		pub1, _ := nostr.GetPublicKey(c.Sec1)
		ck, err := nip44.GenerateConversationKey(pub2, c.Sec1)
		ck2, err2 := nip44.GenerateConversationKey(pub1, c.Sec2)
		if err != nil || err2 != nil || hex.EncodeToString(ck[:]) != c.ConversationKey || ck != ck2 {
			t.Errorf("encrypt_decrypt %q: conversation key %x / %x, want %s", c.Plaintext, ck, ck2, c.ConversationKey)
		}
		nonce, _ := hex.DecodeString(c.Nonce)
		payload, err := nip44.Encrypt(c.Plaintext, ck, nip44.WithCustomNonce(nonce))
		if err != nil || payload != c.Payload {
			t.Errorf("encrypt_decrypt %q: payload %s, %v", c.Plaintext, payload, err)
		}
		if pt, err := nip44.Decrypt(c.Payload, ck2); err != nil || pt != c.Plaintext {
			t.Errorf("encrypt_decrypt: decrypt gave %q, %v", pt, err)
		}
		ran++
	}

	for _, c := range v.EncryptDecryptLongMsg {
		ck := mustHex32(t, c.ConversationKey)
		pt := strings.Repeat(c.Pattern, c.Repeat)
		if s := sha256.Sum256([]byte(pt)); hex.EncodeToString(s[:]) != c.PlaintextSHA256 {
			t.Fatalf("long message plaintext hash mismatch: test bug")
		}
		nonce, _ := hex.DecodeString(c.Nonce)
		payload, err := nip44.Encrypt(pt, ck, nip44.WithCustomNonce(nonce))
		if err != nil {
			t.Errorf("encrypt_decrypt_long_msg %q×%d: %v", c.Pattern, c.Repeat, err)
		} else if s := sha256.Sum256([]byte(payload)); hex.EncodeToString(s[:]) != c.PayloadSHA256 {
			t.Errorf("encrypt_decrypt_long_msg %q×%d: payload sha256 %x, want %s", c.Pattern, c.Repeat, s, c.PayloadSHA256)
		}
		if back, err := nip44.Decrypt(payload, ck); err != nil || back != pt {
			t.Errorf("encrypt_decrypt_long_msg %q×%d: round trip failed: %v", c.Pattern, c.Repeat, err)
		}
		ran++
	}

	inv := vf.V2.Invalid
	for _, n := range inv.EncryptMsgLengths {
		if _, err := nip44.Encrypt(strings.Repeat("x", n), anyCK); err == nil {
			t.Errorf("encrypt_msg_lengths: encrypted %d bytes", n)
		}
		ran++
	}
	for _, c := range inv.GetConversationKey {
		if ck, err := nip44.GenerateConversationKey(c.Pub2, c.Sec1); err == nil {
			t.Errorf("invalid get_conversation_key (%s): got %x", c.Note, ck)
		}
		ran++
	}
	for _, c := range inv.Decrypt {
		ck := mustHex32(t, c.ConversationKey)
		if pt, err := nip44.Decrypt(c.Payload, ck); err == nil {
			t.Errorf("invalid decrypt (%s): decrypted to %q", c.Note, pt)
		}
		ran++
	}

	if ran != inFile {
		t.Fatalf("ran %d vectors of %d in the file", ran, inFile)
	}
	t.Logf("ran all %d NIP-44 v2 vectors", ran)
}
