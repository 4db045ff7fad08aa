"""A picture of search results: one row per query, the query then its top-k gallery images.

Layout (pixels): every cell is a thumbnail of ``thumb_size`` = (H, W), letterboxed, inside a
border of ``border`` on each side, above a caption strip of ``caption`` (rank and score). Cells
and rows are ``gap`` apart, with ``gap`` around the grid, so a grid of R queries and k results is
``gap + (k + 1)·(W + 2·border + gap)`` wide and ``gap + R·(H + 2·border + caption + gap)`` high.
Borders: blue for the query, green for a gallery image of the query's identity, red for another
identity, grey when an identity is unknown.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageOps

from promptsg.apis.images import ImageRecord
from promptsg.apis.retrieval import MATCH, NO_MATCH, SearchResult
from promptsg.errors import DataError

QUERY_COLOUR = (30, 90, 230)
MATCH_COLOUR = (0, 170, 0)
NO_MATCH_COLOUR = (220, 0, 0)
UNKNOWN_COLOUR = (160, 160, 160)
BACKGROUND = (255, 255, 255)
TEXT_COLOUR = (0, 0, 0)


def grid_size(
    num_rows: int,
    topk: int,
    thumb_size: tuple[int, int] = (128, 64),
    border: int = 4,
    caption: int = 14,
    gap: int = 4,
) -> tuple[int, int]:
    """(width, height) of a grid of ``num_rows`` queries with ``topk`` results each."""
    h, w = thumb_size
    return (
        gap + (topk + 1) * (w + 2 * border + gap),
        gap + num_rows * (h + 2 * border + caption + gap),
    )


def _thumbnail(path: str, thumb_size: tuple[int, int]) -> Image.Image:
    try:
        with Image.open(path) as im:
            img = im.convert('RGB')
    except OSError as e:
        raise DataError(f'cannot read image {path}: {e}') from e
    h, w = thumb_size
    return ImageOps.pad(img, (w, h), color=BACKGROUND)


def draw_result_grid(
    query: list[ImageRecord],
    gallery: list[ImageRecord],
    result: SearchResult,
    max_rows: int | None = None,
    thumb_size: tuple[int, int] = (128, 64),
    border: int = 4,
    caption: int = 14,
    gap: int = 4,
) -> Image.Image:
    """Draw the first ``max_rows`` queries of ``result`` and their top-k (see the module doc)."""
    rows = len(query) if max_rows is None else min(max_rows, len(query))
    topk = result.indices.shape[1]
    width, height = grid_size(rows, topk, thumb_size, border, caption, gap)
    canvas = Image.new('RGB', (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    h, w = thumb_size
    cell_w, cell_h = w + 2 * border + gap, h + 2 * border + caption + gap

    def cell(row: int, col: int, path: str, colour: tuple, text: str) -> None:
        x, y = gap + col * cell_w, gap + row * cell_h
        draw.rectangle([x, y, x + w + 2 * border - 1, y + h + 2 * border - 1], fill=colour)
        canvas.paste(_thumbnail(path, thumb_size), (x + border, y + border))
        draw.text((x + 1, y + h + 2 * border + 1), text, fill=TEXT_COLOUR, font=font)

    colours = {MATCH: MATCH_COLOUR, NO_MATCH: NO_MATCH_COLOUR}
    for q in range(rows):
        pid = query[q].pid
        cell(q, 0, query[q].path, QUERY_COLOUR, 'query' if pid is None else f'query {pid}')
        for j in range(topk):
            g = int(result.indices[q, j])
            if g < 0:
                continue
            colour = colours.get(int(result.matches[q, j]), UNKNOWN_COLOUR)
            score = float(np.asarray(result.scores)[q, j])
            cell(q, j + 1, gallery[g].path, colour, f'{j + 1}: {score:.2f}')
    return canvas
