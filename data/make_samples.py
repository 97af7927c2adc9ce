"""Regenerate the project's sample signals from scikit-image's bundled images (public domain / CC0).

Run from the repository root: python data/make_samples.py
"""

from pathlib import Path

import imageio.v3 as iio
import skimage.data

HERE = Path(__file__).parent


def main() -> None:
    # NASA's astronaut photograph (public domain): the face region, 128x128 RGB.
    iio.imwrite(HERE / "astronaut.png", skimage.data.astronaut()[30:158, 170:298])
    # Lav Varshney's camera photograph (CC0): a 64x64 greyscale crop.
    iio.imwrite(HERE / "camera64.png", skimage.data.camera()[100:228:2, 180:308:2])


if __name__ == "__main__":
    main()
