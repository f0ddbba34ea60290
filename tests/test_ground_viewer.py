"""The viewer page in a real headless Chromium (Debian's chromium + chromium-driver, driven by selenium): it
loads, shows the video's frame, draws the selected query's heat where the predictions put it, and clicking
the timeline seeks the video and redraws the overlay for the new second.

`make system-deps` installs the browser (`.ci/run` does, and sets STG_REQUIRE_BROWSER=1 so a missing browser
fails there instead of skipping)."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest

from stg_lightning.eval.predictions import FramePrediction, VideoPredictions, write_predictions
from stg_lightning.ground import RenderConfig, view_predictions

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    if os.environ.get("STG_REQUIRE_BROWSER") == "1":
        raise RuntimeError("chromium / chromedriver not found: `make system-deps` installs them")
    pytest.skip("no chromium + chromedriver (`make system-deps` installs them)", allow_module_level=True)

from selenium import webdriver  # noqa: E402  (only with a browser to drive)
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402

# The flags a root sandbox with no network needs (no sandbox, no background connections, a fresh profile).
FLAGS = (
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
    "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--mute-audio",
)  # fmt: skip
HEAT_ALPHA = 0.6


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory):
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (*FLAGS, f"--user-data-dir={tmp_path_factory.mktemp('profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_window_size(1400, 1000)
    yield driver
    driver.quit()


def hot_cell(row: int, col: int) -> np.ndarray:
    grid = np.zeros((4, 4), dtype=np.float32)
    grid[row, col] = 1.0
    return grid


@pytest.fixture(scope="module")
def page(real_clips, tmp_path_factory: pytest.TempPathFactory):
    """bikes.mp4 (640x272, 10 s): 'ride' detected at seconds 0-4 (hot cell top-left), 'road' at 5-9 (hot
    cell bottom-right); grounding entries give 'ride' a bottom-right cell from second 5 on."""
    root = tmp_path_factory.mktemp("viewer")
    (root / "videos").mkdir()
    (root / "videos" / "bikes.mp4").symlink_to(real_clips["bikes"])
    frames = [
        FramePrediction(t, "ride" if t < 5 else "road", 0.8, heat=hot_cell(0, 0) if t < 5 else hot_cell(3, 3))
        for t in range(10)
    ]
    grounding = [FramePrediction(t, "ride", 0.2, heat=hot_cell(3, 3)) for t in range(5, 10)]
    path = root / "predictions.json"
    write_predictions({"bikes": VideoPredictions(frames, grounding, num_frames=10)}, path)
    out = view_predictions(path, root / "videos", root / "view", render=RenderConfig(heat_alpha=HEAT_ALPHA))
    return out.pages["bikes"]


def wait_for(driver, condition, timeout: float = 20.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script(condition)
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for: {condition}")


def overlay_alpha(driver, fx: float, fy: float) -> int:
    """The overlay canvas' alpha at fractional position (fx, fy) of the frame."""
    return driver.execute_script(
        "const c = document.getElementById('overlay');"
        "return c.getContext('2d').getImageData(Math.floor(arguments[0] * c.width),"
        " Math.floor(arguments[1] * c.height), 1, 1).data[3];",
        fx,
        fy,
    )


def test_viewer_loads_shows_the_frame_and_seeking_updates_the_overlay(browser, page):
    browser.get(page.as_uri())
    assert wait_for(browser, "return document.body.dataset.ready === '1'")
    assert browser.title == "bikes"
    video = browser.execute_script(
        "const v = document.getElementById('video'); return [v.videoWidth, v.videoHeight, v.readyState];"
    )
    assert video[:2] == [640, 272] and video[2] >= 2  # a decoded frame is there to show
    # the frame itself: drawn into a canvas, it is not blank
    spread = browser.execute_script(
        "const v = document.getElementById('video'); const c = document.createElement('canvas');"
        "c.width = 64; c.height = 32; const x = c.getContext('2d'); x.drawImage(v, 0, 0, 64, 32);"
        "const d = x.getImageData(0, 0, 64, 32).data; let lo = 255, hi = 0;"
        "for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }"
        "return hi - lo;"
    )
    assert spread > 50
    # second 0, the detected query 'ride': the hot cell (row 0, col 0 of 4x4) is drawn opaque, the rest clear
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-overlay") == "0,0"
    full = round(255 * HEAT_ALPHA)
    assert abs(overlay_alpha(browser, 0.125, 0.125) - full) <= 25
    assert overlay_alpha(browser, 0.875, 0.875) == 0
    assert "0 s: ride (0.80)" in browser.find_element(By.ID, "status").text

    # a click at 75 % of the timeline seeks to 7.5 s: 'road' is detected there, its heat bottom-right
    timeline = browser.find_element(By.ID, "timeline")
    width = timeline.size["width"]
    ActionChains(browser).move_to_element_with_offset(timeline, int(0.25 * width), 0).click().perform()
    assert wait_for(browser, "return document.body.dataset.second === '7'")
    assert abs(browser.execute_script("return document.getElementById('video').currentTime") - 7.5) < 0.2
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-overlay") == "7,1"
    assert overlay_alpha(browser, 0.125, 0.125) == 0
    assert abs(overlay_alpha(browser, 0.875, 0.875) - full) <= 25

    # picking 'ride' in the query list shows its grounding heat at this second; 'road' has none at 0 s
    browser.find_element(By.CSS_SELECTOR, "input[name=query][value='0']").click()
    assert wait_for(browser, "return document.body.dataset.overlay === '7,0'")
    browser.find_element(By.CSS_SELECTOR, "input[name=query][value='1']").click()
    browser.execute_script("document.getElementById('video').currentTime = 1.2")
    assert wait_for(browser, "return document.body.dataset.second === '1'")
    assert browser.find_element(By.TAG_NAME, "body").get_attribute("data-overlay") == "none"
    assert overlay_alpha(browser, 0.125, 0.125) == 0
