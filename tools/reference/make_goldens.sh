#!/bin/sh
# Regenerates the test checkpoints, test images and golden outputs (see README.md).
# Uses Debian's /usr/bin/python3 (torch 1.13, sentencepiece, PIL). Deterministic.
set -eu
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3
T=tools/reference
RES=model-operator/src/test/resources
MODELS=$RES/models
IMAGES=$RES/images
GOLDEN=$RES/golden

$PY $T/make_checkpoints.py "$@"
$PY $T/make_images.py
for m in tiny-v2 tiny-v1-sharded; do
  $PY $T/reference.py --model $MODELS/$m --self-check
done
$PY $T/reference.py --model flink-job/src/main/resources/io/monostream/demo/model --self-check

mkdir -p $GOLDEN
Q_TEXT="What is written on the sign?"
Q_IMG="Describe this image in one short sentence."
golden() { # case model [args...]
  c=$1; m=$2; shift 2
  echo "golden $c" >&2
  $PY $T/reference.py --model $MODELS/$m --max-new-tokens 16 --golden $GOLDEN/$c.json "$@"
}
golden tiny-v2-text tiny-v2 --question "$Q_TEXT"
golden tiny-v2-square tiny-v2 --image $IMAGES/square-448.png --question "$Q_IMG"
golden tiny-v2-wide tiny-v2 --image $IMAGES/wide-700x500.png --question "$Q_IMG"
golden tiny-v2-tall-max4 tiny-v2 --image $IMAGES/tall-300x1200.png --max-tiles 4 --question "Read all the text in the image."
golden tiny-v2-small tiny-v2 --image $IMAGES/small-37x23.png --question "$Q_IMG"
# Position-table resize (32x32 -> 16x16), v1 shuffle, and dynamic NTK active: the prompt
# must be longer than max_position_embeddings (256).
golden tiny-v1-sharded-wide tiny-v1-sharded --image $IMAGES/wide-700x500.png --question "$Q_IMG" \
  --min-prompt-length 256
golden tiny-v1-sharded-text tiny-v1-sharded --question "$Q_TEXT"
