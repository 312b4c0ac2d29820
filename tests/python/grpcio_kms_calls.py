"""Calls kms.v1.KeyManagementService with grpcio, unmodified: the message classes come from the
daemon's own reflection service (grpcio-reflection's v1alpha descriptor database), the calls go
through grpcio's C core, so the framing on the wire is grpcio's, not tonic's.

Usage: python grpcio_kms_calls.py HOST:PORT DOMAIN
Prints one JSON object: what each call returned or how it was refused.
"""
import json
import sys

import grpc
from google.protobuf import descriptor_pool, message_factory
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

SERVICE = "kms.v1.KeyManagementService"


def main() -> None:
    addr, domain = sys.argv[1], sys.argv[2]
    out = {}
    with grpc.insecure_channel(addr) as channel:
        pool = descriptor_pool.DescriptorPool(ProtoReflectionDescriptorDatabase(channel))
        service = pool.FindServiceByName(SERVICE)

        def rpc(name, compression=None, raw=False):
            method = service.methods_by_name[name]
            request = message_factory.GetMessageClass(method.input_type)
            response = message_factory.GetMessageClass(method.output_type)
            call = channel.unary_unary(
                f"/{SERVICE}/{name}",
                request_serializer=(lambda b: b) if raw else request.SerializeToString,
                response_deserializer=response.FromString,
            )

            def send(fields_or_bytes, request_id=None):
                message = fields_or_bytes if raw else request(**fields_or_bytes)
                md = [("x-kms-domain-id", domain)]
                if request_id:
                    md.append(("x-kms-request-id", request_id))
                answer, c = call.with_call(
                    message, metadata=md, timeout=10, compression=compression
                )
                return answer, dict(c.initial_metadata())

            return send

        def refusal(e):
            trailing = dict(e.trailing_metadata() or ())
            return {
                "code": e.code().name,
                "error_code": trailing.get("x-kms-error-code"),
                "request_id": trailing.get("x-kms-request-id"),
            }

        created, _ = rpc("CreateKey")({"alias": "grpcio", "description": "made by grpcio"})
        key_id = created.metadata.key_id
        out["created"] = {"key_id": key_id, "alias": created.metadata.alias}

        gdk, md = rpc("GenerateDataKey")(
            {"key_id": key_id, "number_of_bytes": 32, "encryption_context": {"bucket": "b"}},
            request_id="grpcio-gdk-1",
        )
        out["gdk"] = {
            "key_id": gdk.key_id,
            "plaintext_len": len(gdk.plaintext),
            "request_id": md.get("x-kms-request-id"),
        }
        opened, _ = rpc("Decrypt")(
            {"ciphertext_blob": gdk.ciphertext_blob, "encryption_context": {"bucket": "b"}}
        )
        out["gdk_opens"] = opened.plaintext == gdk.plaintext

        # The largest plaintext Encrypt takes, in a message past one small DATA frame.
        plaintext = bytes(range(256)) * 16
        sealed, _ = rpc("Encrypt")({"key_id": key_id, "plaintext": plaintext})
        opened, _ = rpc("Decrypt")({"ciphertext_blob": sealed.ciphertext_blob})
        out["encrypt_4096_opens"] = opened.plaintext == plaintext

        for name, send in [
            ("decrypt_garbage", lambda: rpc("Decrypt")({"ciphertext_blob": b"garbage"})),
            ("wrong_context", lambda: rpc("Decrypt")(
                {"ciphertext_blob": gdk.ciphertext_blob, "encryption_context": {"bucket": "x"}}
            )),
            ("undecodable", lambda: rpc("CreateKey", raw=True)(b"\x0a\x02\xff\xfe", "grpcio-bad-1")),
            ("gzip", lambda: rpc("GenerateRandom", compression=grpc.Compression.Gzip)(
                {"number_of_bytes": 8}
            )),
        ]:
            try:
                send()
                out[name] = {"code": "OK"}
            except grpc.RpcError as e:
                out[name] = refusal(e)

        random, _ = rpc("GenerateRandom")({"number_of_bytes": 64})
        out["random_len"] = len(random.random)
    print(json.dumps(out))


main()
