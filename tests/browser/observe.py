#!/usr/bin/env python3
"""Opens a keytrail report.html in headless Chromium (Debian's `chromium` and `chromium-driver`)
through Selenium and prints, as JSON, what a reader sees there: every key row with its verdict,
the verdict counts, the keys each verdict filter leaves shown, the use marks of each key's
timeline once opened, the coverage table, and every network request the browser made (from its
performance log). The Rust test compares that with the Parquet tables and summary.json; this script
judges nothing itself.

    observe.py REPORT.html                     # the observations, JSON on stdout
    observe.py REPORT.html --screenshot F.png  # also a screenshot of the top of the page
    observe.py REPORT.html --timing            # only load and filter times (the 10,000-key bench)
"""

import argparse
import json
import pathlib
import sys
import time

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


def browser(width, height):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              f"--window-size={width},{height}", "--force-device-scale-factor=1",
              # Nothing may leave the file; these only keep Chromium's own services quiet.
              "--no-first-run", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--disable-default-apps", "--disable-domain-reliability"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    # An explicit driver: Selenium Manager would otherwise look for one on the network.
    return webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)


def requests(driver):
    """Every URL the page asked for, from the DevTools events in the performance log."""
    urls = []
    for entry in driver.get_log("performance"):
        msg = json.loads(entry["message"])["message"]
        if msg["method"] == "Network.requestWillBeSent":
            urls.append(msg["params"]["request"]["url"])
    return urls


def shown_keys(driver):
    return [tr.find_element(By.CSS_SELECTOR, ".key-arn").text
            for tr in driver.find_elements(By.CSS_SELECTOR, "#keys tbody.key") if tr.is_displayed()]


def observe(driver, url):
    driver.get(url)
    out = {"title": driver.title}
    rows = []
    for tr in driver.find_elements(By.CSS_SELECTOR, "#keys tbody.key"):
        rows.append({
            "arn": tr.find_element(By.CSS_SELECTOR, ".key-arn").text,
            "verdict": tr.find_element(By.CSS_SELECTOR, ".verdict").text,
            "uses": tr.find_element(By.CSS_SELECTOR, "td.uses").text,
            "displayed": tr.is_displayed(),
            "text": tr.text,
        })
    out["rows"] = rows
    out["counts"] = {li.get_attribute("data-verdict"): li.find_element(By.CSS_SELECTOR, ".n").text
                     for li in driver.find_elements(By.CSS_SELECTOR, "#verdict-counts li")}
    out["scripts"] = len(driver.find_elements(By.CSS_SELECTOR, "script:not([type=\"application/json\"])"))

    # Each verdict filter, chosen with the keyboard (focus the select, type the option).
    verdict = driver.find_element(By.ID, "f-verdict")
    options = [o.get_attribute("value") for o in Select(verdict).options]
    out["filtered"] = {}
    for v in options:
        Select(verdict).select_by_value(v)
        out["filtered"][v or "all"] = {"shown": shown_keys(driver),
                                       "status": driver.find_element(By.ID, "shown").text}
    Select(verdict).select_by_value("")
    verdict.send_keys(Keys.END)
    out["keyboard_last_option"] = {"value": Select(verdict).first_selected_option.get_attribute("value"),
                                   "shown": len(shown_keys(driver))}
    Select(verdict).select_by_value("")
    verdict.send_keys(Keys.HOME)

    # Each key's timeline, opened as a reader opens it: its use marks and their titles.
    out["timelines"] = {}
    for tr in driver.find_elements(By.CSS_SELECTOR, "#keys tbody.key"):
        arn = tr.find_element(By.CSS_SELECTOR, ".key-arn").text
        summary = tr.find_elements(By.CSS_SELECTOR, "tr.tl details summary")
        if not summary:
            continue
        driver.execute_script("arguments[0].scrollIntoView({block:'center'})", summary[0])
        summary[0].click()
        # The page draws a timeline on the details' toggle event, which follows the click.
        WebDriverWait(driver, 5).until(
            lambda _: tr.find_elements(By.CSS_SELECTOR, "tr.tl details[open] svg.timeline"))
        marks = [m for m in tr.find_elements(By.CSS_SELECTOR, "svg.timeline circle.use") if m.is_displayed()]
        titles = [m.find_element(By.TAG_NAME, "title").get_attribute("textContent") for m in marks]
        refused = [m for m in tr.find_elements(By.CSS_SELECTOR, "svg.timeline path.refused") if m.is_displayed()]
        out["timelines"][arn] = {
            "uses": len(marks),
            "refused": len(refused),
            "titles": titles,
            "label": tr.find_element(By.CSS_SELECTOR, "svg.timeline").get_attribute("aria-label"),
        }
        summary[0].click()

    # A key linked from "need attention" is shown, timeline open, even when a filter hid it.
    links = driver.find_elements(By.CSS_SELECTOR, "a.to-key")
    if links:
        Select(verdict).select_by_value("never_used")
        target = links[0].get_attribute("href").split("#")[1]
        driver.execute_script("arguments[0].scrollIntoView()", links[0])
        links[0].click()
        tb = driver.find_element(By.ID, target)
        out["attention_link"] = {
            "arn": tb.find_element(By.CSS_SELECTOR, ".key-arn").text,
            "linked": links[0].text,
            "displayed": tb.is_displayed(),
            "timeline_drawn": bool(tb.find_elements(By.CSS_SELECTOR, "details[open] svg.timeline")),
        }

    out["coverage"] = [
        {"account": tr.get_attribute("data-account"), "region": tr.get_attribute("data-region"),
         **{c: int(tr.find_element(By.CSS_SELECTOR, "td.c-" + c).text)
            for c in ("read", "nologs", "unreadable", "archived")}}
        for tr in driver.find_elements(By.CSS_SELECTOR, "#coverage tbody tr")]
    try:
        driver.switch_to.alert
        out["alert"] = True
    except NoAlertPresentException:
        out["alert"] = False
    # As printed: the controls are gone, the keys are there.
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    out["print"] = {"controls_shown": driver.find_element(By.CSS_SELECTOR, "form.filters").is_displayed(),
                    "keys_shown": len(shown_keys(driver))}
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})
    out["pdf_bytes"] = len(driver.print_page())
    out["requests"] = requests(driver)
    out["console_errors"] = [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    return out


def timing(driver, url):
    """Load and filter times of a large report, as the page itself measures them."""
    t0 = time.monotonic()
    driver.get(url)
    loaded = time.monotonic() - t0
    nav = driver.execute_script(
        "var n=performance.getEntriesByType('navigation')[0];"
        "return {dom: n.domContentLoadedEventEnd, load: n.loadEventEnd}")
    out = {"rows": len(driver.find_elements(By.CSS_SELECTOR, "#keys tbody.key")),
           "open_s": round(loaded, 2), "dom_content_loaded_ms": round(nav["dom"]),
           "load_ms": round(nav["load"]), "filters": {}}
    verdict = driver.find_element(By.ID, "f-verdict")
    for v in [o.get_attribute("value") for o in Select(verdict).options][1:] + [""]:
        ms = driver.execute_script(
            "var s=document.getElementById('f-verdict');s.value=arguments[0];"
            "var t=performance.now();s.dispatchEvent(new Event('change'));"
            "document.body.offsetHeight;return performance.now()-t", v)
        out["filters"][v or "all"] = {"ms": round(ms, 1),
                                      "status": driver.find_element(By.ID, "shown").text}
    ms = driver.execute_script(
        "var s=document.getElementById('f-text');s.value='payments';"
        "var t=performance.now();s.dispatchEvent(new Event('input'));"
        "document.body.offsetHeight;return performance.now()-t")
    out["filters"]["text"] = {"ms": round(ms, 1), "status": driver.find_element(By.ID, "shown").text}
    ms = driver.execute_script(
        "var b=document.querySelector('#keys th button[data-sort=\"4\"]');"
        "var t=performance.now();b.click();document.body.offsetHeight;return performance.now()-t")
    out["sort_ms"] = round(ms, 1)
    return out


def screenshot(driver, url, path):
    driver.get(url)
    # The first key with uses found has its timeline open: the picture that explains a verdict.
    driver.execute_script(
        "var tr=[].find.call(document.querySelectorAll('#keys tbody.key'),"
        "function(r){return +r.querySelector('td.uses').textContent>0});"
        "if(tr)tr.querySelector('tr.tl details').open=true;window.scrollTo(0,0)")
    driver.save_screenshot(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("report")
    ap.add_argument("--screenshot")
    ap.add_argument("--timing", action="store_true")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=1600)
    a = ap.parse_args()
    url = pathlib.Path(a.report).resolve().as_uri()
    driver = browser(a.width, a.height)
    try:
        if a.timing:
            json.dump(timing(driver, url), sys.stdout, indent=1)
        elif a.screenshot:
            screenshot(driver, url, a.screenshot)
        else:
            json.dump(observe(driver, url), sys.stdout)
    finally:
        driver.quit()


if __name__ == "__main__":
    main()
