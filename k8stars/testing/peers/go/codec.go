package main

// `tarspeer codec encode|decode`: TarsGo's codec package driven by JSON.
//
// TarsGo has no reflection-based codec: tars2go emits straight-line code per struct.
// This file interprets a JSON type descriptor and makes exactly the calls that tars2go
// v1.2.4 generates for the same IDL (see the comments on each case), so the bytes and
// the accept/reject behaviour are those of a TarsGo service. Deviation: map entries are
// written in input order (generated code ranges over a Go map, i.e. random order).

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/TarsCloud/TarsGo/tars/protocol/codec"
)

type kind int

const (
	kBool kind = iota
	kByte
	kShort
	kInt
	kLong
	kFloat
	kDouble
	kString
	kBytes
	kVector
	kMap
	kStruct
)

type tarsType struct {
	kind   kind
	elem   *tarsType // vector element, map key
	val    *tarsType // map value
	fields []field   // struct
}

type field struct {
	tag     byte
	typ     *tarsType
	require bool
	value   json.RawMessage
}

var primitives = map[string]kind{
	"bool": kBool, "byte": kByte, "short": kShort, "int": kInt, "long": kLong,
	"float": kFloat, "double": kDouble, "string": kString, "bytes": kBytes,
}

func parseType(raw json.RawMessage) (*tarsType, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return nil, fmt.Errorf("missing type")
	}
	if raw[0] == '"' {
		var name string
		if err := json.Unmarshal(raw, &name); err != nil {
			return nil, err
		}
		k, ok := primitives[name]
		if !ok {
			return nil, fmt.Errorf("unknown type %q", name)
		}
		return &tarsType{kind: k}, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("bad type descriptor %s", raw)
	}
	if v, ok := obj["vector"]; ok {
		e, err := parseType(v)
		if err != nil {
			return nil, err
		}
		return &tarsType{kind: kVector, elem: e}, nil
	}
	if v, ok := obj["map"]; ok {
		var kv []json.RawMessage
		if err := json.Unmarshal(v, &kv); err != nil || len(kv) != 2 {
			return nil, fmt.Errorf("map type must be [KTYPE, VTYPE]: %s", raw)
		}
		k, err := parseType(kv[0])
		if err != nil {
			return nil, err
		}
		val, err := parseType(kv[1])
		if err != nil {
			return nil, err
		}
		return &tarsType{kind: kMap, elem: k, val: val}, nil
	}
	if v, ok := obj["struct"]; ok {
		fs, err := parseFields(v, false)
		if err != nil {
			return nil, err
		}
		for i := 1; i < len(fs); i++ {
			if fs[i].tag <= fs[i-1].tag {
				return nil, fmt.Errorf("struct fields must be in ascending tag order")
			}
		}
		return &tarsType{kind: kStruct, fields: fs}, nil
	}
	return nil, fmt.Errorf("bad type descriptor %s", raw)
}

type rawField struct {
	Tag     *int            `json:"tag"`
	Type    json.RawMessage `json:"type"`
	Require *bool           `json:"require"`
	Value   json.RawMessage `json:"value"`
}

func parseFields(raw json.RawMessage, withValue bool) ([]field, error) {
	var rfs []rawField
	if err := json.Unmarshal(raw, &rfs); err != nil {
		return nil, fmt.Errorf("fields must be a list of {tag, type}: %v", err)
	}
	out := make([]field, 0, len(rfs))
	for _, rf := range rfs {
		if rf.Tag == nil || *rf.Tag < 0 || *rf.Tag > 255 {
			return nil, fmt.Errorf("tag must be an integer 0..255")
		}
		t, err := parseType(rf.Type)
		if err != nil {
			return nil, err
		}
		req := true
		if rf.Require != nil {
			req = *rf.Require
		}
		if withValue && len(rf.Value) == 0 {
			return nil, fmt.Errorf("field with tag %d has no value", *rf.Tag)
		}
		out = append(out, field{tag: byte(*rf.Tag), typ: t, require: req, value: rf.Value})
	}
	return out, nil
}

// ------------------------------------------------------------------ JSON -> values

func decodeJSON(raw json.RawMessage) (any, error) {
	d := json.NewDecoder(bytes.NewReader(raw))
	d.UseNumber()
	var v any
	err := d.Decode(&v)
	return v, err
}

func asInt(v any, bits int, name string) (int64, error) {
	n, ok := v.(json.Number)
	if !ok {
		if s, isStr := v.(string); isStr && bits == 64 {
			n = json.Number(strings.TrimSpace(s))
		} else {
			return 0, fmt.Errorf("%s value must be an integer, got %v", name, v)
		}
	}
	i, err := strconv.ParseInt(string(n), 10, bits)
	if err != nil {
		return 0, fmt.Errorf("%s value out of range or not an integer: %s", name, n)
	}
	return i, nil
}

func asFloat(v any) (float64, error) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, fmt.Errorf("float/double value must be a number, got %v", v)
	}
	return strconv.ParseFloat(string(n), 64)
}

func asList(v any, what string) ([]any, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("%s value must be a JSON list, got %v", what, v)
	}
	return l, nil
}

func asBytes(v any) ([]byte, error) {
	s, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("bytes value must be a hex string, got %v", v)
	}
	return hex.DecodeString(s)
}

// isZero mirrors tars2go's optional-field test: `!= 0`, `!= false`, `!= ""`, `len() > 0`.
// Optional structs are always written.
func isZero(t *tarsType, v any) bool {
	switch t.kind {
	case kBool:
		b, _ := v.(bool)
		return !b
	case kByte, kShort, kInt, kLong:
		i, err := asInt(v, 64, "int")
		return err == nil && i == 0
	case kFloat, kDouble:
		f, err := asFloat(v)
		return err == nil && f == 0
	case kString:
		s, _ := v.(string)
		return s == ""
	case kBytes:
		b, err := asBytes(v)
		return err == nil && len(b) == 0
	case kVector, kMap:
		l, _ := v.([]any)
		return len(l) == 0
	}
	return false
}

// ------------------------------------------------------------------ writer

func writeFields(buf *codec.Buffer, fs []field, vals []any) error {
	for i, f := range fs {
		if !f.require && isZero(f.typ, vals[i]) {
			continue // tars2go: optional field equal to its (zero) default is not written
		}
		if err := writeValue(buf, f.typ, f.tag, vals[i]); err != nil {
			return err
		}
	}
	return nil
}

func writeValue(buf *codec.Buffer, t *tarsType, tag byte, v any) error {
	switch t.kind {
	case kBool:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("bool value must be true/false, got %v", v)
		}
		return buf.WriteBool(b, tag)
	case kByte:
		i, err := asInt(v, 8, "byte")
		if err != nil {
			return err
		}
		return buf.WriteInt8(int8(i), tag)
	case kShort:
		i, err := asInt(v, 16, "short")
		if err != nil {
			return err
		}
		return buf.WriteInt16(int16(i), tag)
	case kInt:
		i, err := asInt(v, 32, "int")
		if err != nil {
			return err
		}
		return buf.WriteInt32(int32(i), tag)
	case kLong:
		i, err := asInt(v, 64, "long")
		if err != nil {
			return err
		}
		return buf.WriteInt64(i, tag)
	case kFloat:
		f, err := asFloat(v)
		if err != nil {
			return err
		}
		return buf.WriteFloat32(float32(f), tag)
	case kDouble:
		f, err := asFloat(v)
		if err != nil {
			return err
		}
		return buf.WriteFloat64(f, tag)
	case kString:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("string value must be a JSON string, got %v", v)
		}
		return buf.WriteString(s, tag)
	case kBytes:
		// generated: WriteHead(SimpleList, tag); WriteHead(BYTE, 0); WriteInt32(len, 0); WriteSliceInt8
		b, err := asBytes(v)
		if err != nil {
			return err
		}
		if err := buf.WriteHead(codec.SimpleList, tag); err != nil {
			return err
		}
		if err := buf.WriteHead(codec.BYTE, 0); err != nil {
			return err
		}
		if err := buf.WriteInt32(int32(len(b)), 0); err != nil {
			return err
		}
		return buf.WriteBytes(b)
	case kVector:
		l, err := asList(v, "vector")
		if err != nil {
			return err
		}
		if err := buf.WriteHead(codec.LIST, tag); err != nil {
			return err
		}
		if err := buf.WriteInt32(int32(len(l)), 0); err != nil {
			return err
		}
		for _, e := range l {
			if err := writeValue(buf, t.elem, 0, e); err != nil {
				return err
			}
		}
		return nil
	case kMap:
		l, err := asList(v, "map")
		if err != nil {
			return err
		}
		if err := buf.WriteHead(codec.MAP, tag); err != nil {
			return err
		}
		if err := buf.WriteInt32(int32(len(l)), 0); err != nil {
			return err
		}
		for _, e := range l {
			kv, ok := e.([]any)
			if !ok || len(kv) != 2 {
				return fmt.Errorf("map entry must be [key, value], got %v", e)
			}
			if err := writeValue(buf, t.elem, 0, kv[0]); err != nil {
				return err
			}
			if err := writeValue(buf, t.val, 1, kv[1]); err != nil {
				return err
			}
		}
		return nil
	case kStruct:
		l, err := asList(v, "struct")
		if err != nil {
			return err
		}
		if len(l) != len(t.fields) {
			return fmt.Errorf("struct value must be a list of %d field values, got %d", len(t.fields), len(l))
		}
		// generated WriteBlock: StructBegin(tag), WriteTo, StructEnd(0)
		if err := buf.WriteHead(codec.StructBegin, tag); err != nil {
			return err
		}
		if err := writeFields(buf, t.fields, l); err != nil {
			return err
		}
		return buf.WriteHead(codec.StructEnd, 0)
	}
	return fmt.Errorf("unknown kind %d", t.kind)
}

// ------------------------------------------------------------------ reader

func zeroValue(t *tarsType) any {
	switch t.kind {
	case kBool:
		return false
	case kByte, kShort, kInt, kFloat, kDouble:
		return 0
	case kLong:
		return "0"
	case kString, kBytes:
		return ""
	case kVector, kMap:
		return []any{}
	case kStruct:
		out := make([]any, len(t.fields))
		for i, f := range t.fields {
			out[i] = zeroValue(f.typ)
		}
		return out
	}
	return nil
}

func readFields(r *codec.Reader, fs []field) ([]any, error) {
	out := make([]any, len(fs))
	for i, f := range fs {
		v, err := readValue(r, f.typ, f.tag, f.require)
		if err != nil {
			return nil, err
		}
		out[i] = v
	}
	return out, nil
}

func jsonFloat(f float64) (any, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("decoded float is %v, not representable in JSON", f)
	}
	return f, nil
}

func readValue(r *codec.Reader, t *tarsType, tag byte, require bool) (any, error) {
	switch t.kind {
	case kBool:
		var v bool
		err := r.ReadBool(&v, tag, require)
		return v, err
	case kByte:
		var v int8
		err := r.ReadInt8(&v, tag, require)
		return int64(v), err
	case kShort:
		var v int16
		err := r.ReadInt16(&v, tag, require)
		return int64(v), err
	case kInt:
		var v int32
		err := r.ReadInt32(&v, tag, require)
		return int64(v), err
	case kLong:
		var v int64
		err := r.ReadInt64(&v, tag, require)
		return strconv.FormatInt(v, 10), err
	case kFloat:
		var v float32
		if err := r.ReadFloat32(&v, tag, require); err != nil {
			return nil, err
		}
		return jsonFloat(float64(v))
	case kDouble:
		var v float64
		if err := r.ReadFloat64(&v, tag, require); err != nil {
			return nil, err
		}
		return jsonFloat(v)
	case kString:
		var v string
		err := r.ReadString(&v, tag, require)
		return v, err
	case kBytes:
		// generated: SkipToNoCheck; LIST of int8 or SimpleList; else "require vector, but not"
		have, ty, err := r.SkipToNoCheck(tag, require)
		if err != nil {
			return nil, err
		}
		if !have {
			return "", nil
		}
		var length int32
		var data []int8
		switch ty {
		case codec.LIST:
			if err := r.ReadInt32(&length, 0, true); err != nil {
				return nil, err
			}
			data = make([]int8, length)
			for i := range data {
				if err := r.ReadInt8(&data[i], 0, true); err != nil {
					return nil, err
				}
			}
		case codec.SimpleList:
			if _, err := r.SkipTo(codec.BYTE, 0, true); err != nil {
				return nil, err
			}
			if err := r.ReadInt32(&length, 0, true); err != nil {
				return nil, err
			}
			if err := r.ReadSliceInt8(&data, length, true); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("require vector, but not")
		}
		return hex.EncodeToString(codec.FromInt8(data)), nil
	case kVector:
		have, ty, err := r.SkipToNoCheck(tag, require)
		if err != nil {
			return nil, err
		}
		if !have {
			return []any{}, nil
		}
		switch ty {
		case codec.LIST:
			var length int32
			if err := r.ReadInt32(&length, 0, true); err != nil {
				return nil, err
			}
			out := make([]any, length)
			for i := range out {
				if out[i], err = readValue(r, t.elem, 0, true); err != nil {
					return nil, err
				}
			}
			return out, nil
		case codec.SimpleList:
			return nil, fmt.Errorf("not support SimpleList type")
		default:
			return nil, fmt.Errorf("require vector, but not")
		}
	case kMap:
		have, err := r.SkipTo(codec.MAP, tag, require)
		if err != nil {
			return nil, err
		}
		if !have {
			return []any{}, nil
		}
		var length int32
		if err := r.ReadInt32(&length, 0, true); err != nil {
			return nil, err
		}
		// Generated code stores into a Go map: a repeated key keeps the last value.
		out := []any{}
		index := map[string]int{}
		for i := int32(0); i < length; i++ {
			k, err := readValue(r, t.elem, 0, true)
			if err != nil {
				return nil, err
			}
			v, err := readValue(r, t.val, 1, true)
			if err != nil {
				return nil, err
			}
			kj, _ := json.Marshal(k)
			if j, dup := index[string(kj)]; dup {
				out[j] = []any{k, v}
				continue
			}
			index[string(kj)] = len(out)
			out = append(out, []any{k, v})
		}
		return out, nil
	case kStruct:
		// generated ReadBlock: SkipTo(StructBegin); ReadFrom; SkipToStructEnd
		have, err := r.SkipTo(codec.StructBegin, tag, require)
		if err != nil {
			return nil, err
		}
		if !have {
			if require {
				return nil, fmt.Errorf("require struct, but not exist. tag %d", tag)
			}
			return zeroValue(t), nil
		}
		vals, err := readFields(r, t.fields)
		if err != nil {
			return nil, err
		}
		if err := r.SkipToStructEnd(); err != nil {
			return nil, err
		}
		return vals, nil
	}
	return nil, fmt.Errorf("unknown kind %d", t.kind)
}

// ------------------------------------------------------------------ commands

type codecCase struct {
	Fields json.RawMessage `json:"fields"`
	Hex    string          `json:"hex"`
}

type codecRequest struct {
	Cases   []codecCase `json:"cases"`
	Seconds *float64    `json:"seconds"`
}

func encodeCase(c codecCase) (string, error) {
	fs, err := parseFields(c.Fields, true)
	if err != nil {
		return "", err
	}
	vals := make([]any, len(fs))
	for i, f := range fs {
		if vals[i], err = decodeJSON(f.value); err != nil {
			return "", err
		}
	}
	buf := codec.NewBuffer()
	if err := writeFields(buf, fs, vals); err != nil {
		return "", err
	}
	return hex.EncodeToString(buf.ToBytes()), nil
}

func decodeCase(c codecCase) (vals []any, err error) {
	fs, err := parseFields(c.Fields, false)
	if err != nil {
		return nil, err
	}
	data, err := hex.DecodeString(c.Hex)
	if err != nil {
		return nil, fmt.Errorf("bad hex: %v", err)
	}
	// Generated TarsGo code panics on some malformed input (e.g. a negative list size
	// reaches make()); report that as a rejection like any other decode error.
	defer func() {
		if p := recover(); p != nil {
			vals, err = nil, fmt.Errorf("panic: %v", p)
		}
	}()
	return readFields(codec.NewReader(data), fs)
}

func runEncode(req codecRequest) (any, error) {
	out := make([]string, len(req.Cases))
	for i, c := range req.Cases {
		h, err := encodeCase(c)
		if err != nil {
			return nil, fmt.Errorf("case %d: %v", i, err)
		}
		out[i] = h
	}
	return map[string]any{"hex": out}, nil
}

func runDecode(req codecRequest) (any, error) {
	out := make([]any, len(req.Cases))
	for i, c := range req.Cases {
		v, err := decodeCase(c)
		if err != nil {
			out[i] = map[string]string{"error": err.Error()}
		} else {
			out[i] = v
		}
	}
	return map[string]any{"values": out}, nil
}
