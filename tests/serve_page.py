"""The `gptlab serve` page in headless Chromium, driven by Selenium (started by tests/serve.rs).

Usage: python3 tests/serve_page.py URL SCREENSHOT.png [--picture STAGE,STAGE,...]
Asks a stage trained to answer with HTML and checks the answer is shown as text; asks two
stages side by side, rates one answer 👍, ranks three answers, holds a two-turn conversation in
one column and rates its second answer 👍, fills the next-token panel and the attention
heatmap, and saves a screenshot. Prints what it rated as JSON for the caller to
find in the run's feedback files. With --picture it only holds a two-turn conversation with those
stages side by side and takes the screenshot (for results/examples/, from a real run).
"""
import json
import sys

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

url, shot = sys.argv[1], sys.argv[2]
picture = sys.argv[4].split(",") if sys.argv[3:4] == ["--picture"] else None
options = webdriver.ChromeOptions()
for flag in ["--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
             "--disable-dev-shm-usage", "--lang=en-US"]:
    options.add_argument(flag)
options.binary_location = "/usr/bin/chromium"
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=webdriver.ChromeService("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 30)
css = lambda sel: driver.find_elements(By.CSS_SELECTOR, sel)


def set_value(element_id, value):
    box = driver.find_element(By.ID, element_id)
    box.clear()
    box.send_keys(str(value))


def choose_stages(names):
    for box in css("#stages input[type=checkbox]"):
        if box.is_selected() != (box.get_attribute("value") in names):
            box.click()


def ask(prompt, stages, n):
    choose_stages(stages)
    set_value("n", n)
    set_value("prompt", prompt)
    driver.find_element(By.ID, "send").click()
    wait.until(lambda d: len(css(".answer")) == n * len(stages)
               and all(a.get_attribute("data-done") for a in css(".answer")))
    return {c.get_attribute("data-stage"): c for c in css(".column")}


def no_alert():
    try:
        driver.switch_to.alert
        return False
    except NoAlertPresentException:
        return True


def explore_and_shoot(prompt, turns=None):
    if turns:  # a conversation in every column, then the explorer on the typed prompt
        driver.find_element(By.ID, "new-conversation").click()
        for turn in turns:
            ask(turn, picture or ["base", "assistant"], 1)
        set_value("prompt", prompt)
    else:
        ask(prompt, picture or ["base", "assistant"], 1)
    set_value("candidates", "过山车,大风车")
    wait.until(lambda d: len(css("#next-token .bar-row")) == 12)
    driver.find_element(By.ID, "show-attention").click()
    wait.until(lambda d: d.find_element(By.ID, "heatmap").get_attribute("data-drawn"))
    driver.save_screenshot(shot)


try:
    driver.get(url)
    wait.until(lambda d: len(css("#stages input")) >= 2)
    if picture:
        set_value("seed", 0)
        set_value("temperature", 0)
        explore_and_shoot("我今天想去游乐园玩", ["我喜欢吃西瓜。", "我喜欢吃什么?"])
        sys.exit(0)

    # Model output is text: the html stage's answer shows its markup, and nothing runs.
    set_value("temperature", 0)
    columns = ask("hi", ["html"], 1)
    shown = columns["html"].find_element(By.CSS_SELECTOR, ".text").text
    assert "<script>" in shown and "<img" in shown, shown
    assert not columns["html"].find_elements(By.CSS_SELECTOR, ".text img, .text script"), "markup was rendered"
    assert no_alert(), "the answer's script ran"

    # Two stages side by side; 👍 on the assistant's answer.
    set_value("temperature", 0.8)
    set_value("seed", 3)
    columns = ask("中国的首都是哪里?", ["base", "assistant"], 1)
    assert set(columns) == {"base", "assistant"}, columns.keys()
    # The page's own font draws its Chinese (the test gives the browser no CJK font).
    wait.until(lambda d: d.execute_script(
        "return [...document.fonts].some(f => f.family.includes('Noto Sans SC gptlab')"
        " && f.status === 'loaded')"))
    liked = columns["assistant"].find_element(By.CSS_SELECTOR, ".text").get_property("textContent")
    columns["assistant"].find_element(By.CSS_SELECTOR, "button.up").click()
    wait.until(lambda d: columns["assistant"].find_element(By.CSS_SELECTOR, ".saved").text == "saved")

    # Three answers from the assistant (one seed, three different draws), ranked by clicking
    # them best first: third, first, second.
    set_value("seed", 4)
    columns = ask("小狗怎么叫?", ["assistant"], 3)
    cards = columns["assistant"].find_elements(By.CSS_SELECTOR, ".answer")
    order = [cards[2], cards[0], cards[1]]
    # textContent, as the page sends it (Selenium's .text trims whitespace).
    ranking = [c.find_element(By.CSS_SELECTOR, ".text").get_property("textContent") for c in order]
    for card in order:
        card.click()
    columns["assistant"].find_element(By.CSS_SELECTOR, "button.save-ranking").click()
    wait.until(lambda d: "saved 3 pairs" in columns["assistant"].text)

    # A two-turn conversation in one column: the second question goes with the first turn and
    # answer, and rating the second answer records all of it.
    driver.find_element(By.ID, "new-conversation").click()
    first = ask("我叫小明。", ["assistant"], 1)["assistant"].find_element(
        By.CSS_SELECTOR, ".text").get_property("textContent")
    column = ask("我叫什么名字?", ["assistant"], 1)["assistant"]
    shown = [t.get_property("textContent")
             for t in column.find_elements(By.CSS_SELECTOR, ".history .turn .said")]
    assert shown == ["我叫小明。", first, "我叫什么名字?"], shown
    second = column.find_element(By.CSS_SELECTOR, ".text").get_property("textContent")
    column.find_element(By.CSS_SELECTOR, "button.up").click()
    wait.until(lambda d: column.find_element(By.CSS_SELECTOR, ".saved").text == "saved")
    # A new conversation starts from nothing.
    driver.find_element(By.ID, "new-conversation").click()
    column = ask("你好!", ["assistant"], 1)["assistant"]
    assert len(column.find_elements(By.CSS_SELECTOR, ".history .turn")) == 1

    # Side by side again for the picture, with the explorer filled in.
    explore_and_shoot("我今天想去游乐园玩")

    severe = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert not severe, severe
    print(json.dumps({"liked": liked, "ranking": ranking, "conversation": [first, second]},
                     ensure_ascii=False))
finally:
    driver.quit()
