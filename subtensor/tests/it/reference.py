"""Reference peer for the subtensor crate's parity tests: bittensor 11.3.0's own encoder.

Reads {"golden": PATH, "cases": [...]} on stdin; each case names a call (module, function,
params in the SDK's form), a nonce, a tip and an era (``"00"`` for immortal, or
``{"period": P, "current": N}`` with the era's block hash). Prints, per case, what the SDK's
``RuntimeCodec`` builds on the golden file's spec-461 metadata: the call data, the signing
payload, and the signed extrinsic and its hash for the case's public key and fixed signature.
"""

import json
import sys

from bittensor._transport.codec import RuntimeCodec

request = json.load(sys.stdin)
golden = json.load(open(request["golden"]))
network = golden["network"]


def opaque_metadata(raw: bytes) -> bytes:
    """`Metadata_metadata_at_version`'s result, Option<Vec<u8>>, to the bytes inside."""
    assert raw[0] == 1, "no metadata at that version"
    mode = raw[1] & 3
    skip = {0: 1, 1: 2, 2: 4}[mode]
    return raw[1 + skip :]


codec = RuntimeCodec(
    opaque_metadata(bytes.fromhex(golden["metadata"]["v15_hex"].removeprefix("0x"))),
    spec_version=network["spec_version"],
    transaction_version=network["transaction_version"],
)

out = []
for case in request["cases"]:
    call = codec.compose_call(case["module"], case["function"], case["params"])
    era = case["era"]
    era_hash = case.get("era_block_hash") or network["genesis_hash"]
    payload = codec.signature_payload(
        call,
        era=era,
        nonce=case["nonce"],
        tip=case["tip"],
        tip_asset_id=None,
        genesis_hash=network["genesis_hash"],
        era_block_hash=era_hash,
    )
    extrinsic, extrinsic_hash = codec.encode_signed_extrinsic(
        call,
        public_key=bytes.fromhex(case["public_key"]),
        signature=bytes.fromhex(case["signature"]),
        signature_version=1,
        era=era,
        nonce=case["nonce"],
        tip=case["tip"],
        tip_asset_id=None,
    )
    out.append(
        {
            "name": case["name"],
            "call_data": codec.call_data(call).hex(),
            "payload": payload.hex(),
            "extrinsic": extrinsic.hex(),
            "hash": extrinsic_hash.removeprefix("0x"),
        }
    )
print(json.dumps(out))
