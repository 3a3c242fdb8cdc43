#!/usr/bin/env python3
"""Regenerate the gptlab demo data set (datasets/demo/*).

Everything here is our own writing: small word lists and sentence templates, filled in with a
fixed seed, so `python3 make_demo.py` always writes the same bytes.

The data is meant for a tiny char-level model whose vocabulary (512 ids, 7 of them special) is
trained on all demo files together, so the character set is kept small on purpose: every
Chinese character comes from the word lists and templates below, and `main()` refuses to write
anything when the demo set uses more than MAX_DISTINCT_CHARS distinct characters.

Files written (see README.md):
  corpus.txt          plain pretraining text: facts, everyday sentences, stories, many questions
  amusement_park.txt  "...去游乐园玩" followed by 过山车 in exactly 75% and 大风车 in 25% of cases
  sft.jsonl           {"prompt","completion","task"} short-answer Q&A
  sft_val.jsonl       held-out Q&A: other phrasings or other items, answerable from corpus.txt
  prefs.jsonl         {"prompt","chosen","rejected","task"}
  prefs_val.jsonl     the same, on held-out prompts
  prompts.jsonl       {"prompt","completion","task"} rollout prompts with reference answers
  feedback.jsonl      TRL unpaired feedback, as `gptlab chat` writes it
"""

import json
import os
import random
import sys
from collections import Counter

SEED = 20261129
MAX_DISTINCT_CHARS = 450
CORPUS_TARGET_CHARS = 36_000  # ~100 KB of UTF-8
OUT_DIR = os.path.dirname(os.path.abspath(__file__))

# ---------------------------------------------------------------------------------------------
# Word lists: the facts the model can learn.
# ---------------------------------------------------------------------------------------------

# (country, capital). The last two are never asked in sft.jsonl: only corpus.txt states them,
# so sft_val.jsonl can check whether the assistant answers from what it read in pretraining.
COUNTRIES = [
    ("中国", "北京"), ("日本", "东京"), ("法国", "巴黎"), ("英国", "伦敦"), ("美国", "华盛顿"),
    ("德国", "柏林"), ("俄罗斯", "莫斯科"), ("意大利", "罗马"), ("韩国", "首尔"),
    ("埃及", "开罗"), ("印度", "新德里"), ("加拿大", "渥太华"),
    ("泰国", "曼谷"), ("西班牙", "马德里"),
]
CAPITALS_ONLY_IN_CORPUS = {"泰国", "西班牙"}

# (thing, colour, is_fruit)
COLOURED = [
    ("香蕉", "黄色", True), ("苹果", "红色", True), ("草莓", "红色", True), ("葡萄", "紫色", True),
    ("橙子", "橙色", True), ("柠檬", "黄色", True), ("西瓜", "绿色", True), ("蓝莓", "蓝色", True),
    ("桃子", "粉色", True), ("梨", "黄色", True),
    ("天空", "蓝色", False), ("草", "绿色", False), ("雪", "白色", False), ("牛奶", "白色", False),
    ("大海", "蓝色", False), ("树叶", "绿色", False), ("煤", "黑色", False), ("云", "白色", False),
]
FRUITS = [t for t, _, f in COLOURED if f]
COLOUR_OF = {t: c for t, c, _ in COLOURED}

# (animal, sound) and a few one-line facts about animals.
ANIMALS = [
    ("小狗", "汪汪"), ("小猫", "喵喵"), ("小牛", "哞哞"), ("小羊", "咩咩"), ("小鸭子", "嘎嘎"),
    ("公鸡", "喔喔"), ("小鸟", "叽叽"), ("青蛙", "呱呱"), ("小猪", "哼哼"), ("老虎", "嗷嗷"),
]
SOUND_OF = dict(ANIMALS)
# (question, short answer, statement for the corpus)
ANIMAL_FACTS = [
    ("什么动物会飞?", "小鸟。", "小鸟会飞，它在天上飞。"),
    ("鱼住在哪里?", "水里。", "鱼住在水里，鱼会游。"),
    ("大象的鼻子长吗?", "很长。", "大象的鼻子很长。"),
    ("熊猫是什么颜色的?", "黑白色。", "熊猫是黑白色的，它爱吃竹子。"),
    ("熊猫爱吃什么?", "竹子。", "熊猫爱吃竹子。"),
    ("兔子爱吃什么?", "胡萝卜。", "兔子爱吃胡萝卜。"),
    ("小猫爱吃什么?", "鱼。", "小猫爱吃鱼。"),
    ("小狗有几条腿?", "四条腿。", "小狗有四条腿。"),
    ("小鸟有几条腿?", "两条腿。", "小鸟有两条腿。"),
    ("长颈鹿的脖子长吗?", "很长。", "长颈鹿的脖子很长。"),
    ("老虎是什么动物?", "大猫。", "老虎是一种很大的猫。"),
    ("牛奶是从哪里来的?", "小牛的妈妈。", "牛奶是从牛妈妈那里来的。"),
]

# Facts about time and numbers: (question, short answer, statement)
WORLD_FACTS = [
    ("一年有几个月?", "12个月。", "一年有12个月。"),
    ("一周有几天?", "7天。", "一周有7天。"),
    ("一天有几个小时?", "24个小时。", "一天有24个小时。"),
    ("一小时有几分钟?", "60分钟。", "一小时有60分钟。"),
    ("一年有几个季节?", "四个。", "一年有四个季节：春天，夏天，秋天和冬天。"),
    ("太阳从哪边出来?", "东边。", "太阳从东边出来，从西边下山。"),
    ("冬天冷还是热?", "冷。", "冬天很冷，有时会下雪。"),
    ("夏天冷还是热?", "热。", "夏天很热，我们吃西瓜。"),
    ("人有几只手?", "两只手。", "人有两只手和两只脚。"),
    ("一只手有几个手指?", "五个。", "一只手有五个手指。"),
    ("水会变成什么?", "冰。", "水很冷的时候会变成冰。"),
    ("晚上天上有什么?", "月亮和星星。", "晚上天上有月亮和星星。"),
]

NUM_WORDS = ["零", "一", "二", "三", "四", "五", "六", "七", "八", "九", "十"]


def num_word(n):
    """0..99 in Chinese characters (十一, 二十, 二十三)."""
    if n <= 10:
        return NUM_WORDS[n]
    tens, ones = divmod(n, 10)
    head = "十" if tens == 1 else NUM_WORDS[tens] + "十"
    return head + (NUM_WORDS[ones] if ones else "")


# (English word, Chinese meaning)
ENGLISH = [
    ("apple", "苹果"), ("banana", "香蕉"), ("cat", "猫"), ("dog", "狗"), ("fish", "鱼"),
    ("bird", "鸟"), ("red", "红色"), ("blue", "蓝色"), ("green", "绿色"), ("water", "水"),
    ("book", "书"), ("hello", "你好"), ("sun", "太阳"), ("moon", "月亮"), ("one", "一"),
    ("two", "二"), ("three", "三"), ("milk", "牛奶"),
]

ASSISTANT_NAME = "小助手"
NAMES = ["小明", "小红", "小华", "小兰", "小文", "小东"]
FAMILY = ["妈妈", "爸爸", "奶奶", "爷爷", "姐姐", "弟弟", "哥哥", "妹妹"]
PLACES = ["公园", "学校", "商店", "河边", "山上", "动物园", "图书馆", "海边"]
TIMES = ["今天", "明天", "昨天", "早上", "晚上", "周末", "下午"]
WEATHER = ["天气很好", "下雨了", "下雪了", "天很热", "天很冷", "风很大", "天很蓝"]
FOODS = ["米饭", "面条", "鸡蛋", "包子", "饺子", "面包", "青菜"]
THINGS_TO_DO = ["看书", "写字", "画画", "唱歌", "跑步", "游泳", "打球", "做饭", "写作业", "听音乐"]
AT_HOME = ["看书", "写字", "画画", "唱歌", "做饭", "写作业", "听音乐"]
PAST_TIMES = ["今天", "昨天", "早上", "晚上", "下午"]  # "下雨了" does not go with 明天
PETS = ["小狗", "小猫", "小鸟", "小鸭子", "小猪"]
FEELINGS = ["很开心", "很高兴", "很快乐", "笑了"]

# Everyday questions that a base model should learn to continue with more questions.
EVERYDAY_QUESTIONS = [
    "你今天吃饭了吗?", "你喜欢什么水果?", "你家有几口人?", "明天会下雨吗?", "你几点起床?",
    "你喜欢什么颜色?", "你在做什么?", "我们去哪里玩?", "你想吃什么?", "你的书在哪里?",
    "你会唱歌吗?", "今天是星期几?", "你喜欢小狗还是小猫?", "你想去公园吗?", "外面冷不冷?",
    "你看见我的小猫了吗?", "你明天去学校吗?", "你最喜欢哪个动物?", "为什么天空是蓝色的?",
    "你今天开心吗?", "妈妈在家吗?", "我们什么时候去海边?", "你会游泳吗?", "谁在唱歌?",
]

# ---------------------------------------------------------------------------------------------
# Question phrasings. Each template has a placeholder and an answer style; the SFT and
# validation files use different templates for the same item where they can.
# ---------------------------------------------------------------------------------------------

CAPITAL_Q = [
    "{c}的首都是哪里?", "{c}的首都是哪个城市?", "{c}的首都在哪里?", "请问{c}的首都是什么?",
    "{c}的首都叫什么?", "告诉我{c}的首都。", "哪个城市是{c}的首都?", "你知道{c}的首都吗?",
]
CAPITAL_REVERSE_Q = ["{cap}是哪个国家的首都?", "{cap}是哪国的首都?"]

COLOUR_Q = [
    "{t}是什么颜色的?", "{t}是什么颜色?", "{t}的颜色是什么?", "请问{t}是什么颜色的?",
    "你知道{t}是什么颜色的吗?",
]
SOUND_Q = [
    "{a}怎么叫?", "{a}的叫声是什么?", "{a}会发出什么声音?", "{a}是怎么叫的?",
    "请问{a}怎么叫?",
]
SOUND_REVERSE_Q = ["什么动物{s}地叫?", "谁会{s}地叫?"]

MATH_DIGIT_Q = ["{a}+{b}等于几?", "{a}+{b}=?", "{a}加{b}等于多少?", "{a}加{b}是几?"]
MATH_SUB_Q = ["{a}-{b}等于几?", "{a}减{b}等于多少?"]
MATH_WORD_Q = ["{aw}加{bw}等于几?", "{aw}加{bw}是多少?"]

IDENTITY_SFT = [
    ("你叫什么名字?", "我是小助手。"), ("你是谁?", "我是小助手。"), ("你的名字是什么?", "我是小助手。"),
    ("请问你叫什么?", "我是小助手。"), ("你叫什么?", "我是小助手。"), ("我怎么叫你?", "叫我小助手。"),
    ("介绍一下你自己。", "我是小助手。"), ("你是小明吗?", "不是，我是小助手。"),
    ("你是人吗?", "不是，我是小助手。"), ("你会做什么?", "我会回答问题。"),
    ("你能帮我吗?", "可以，请问吧。"), ("你是一个小助手吗?", "是的。"), ("你好，你是谁?", "我是小助手。"),
    ("What is your name?", "我是小助手。"), ("你有名字吗?", "有，我叫小助手。"),
    ("谁在和我说话?", "我是小助手。"), ("你几岁了?", "我没有年龄。"),
    ("你叫什么名字?请告诉我。", "我是小助手。"), ("你好，请问你叫什么名字?", "我是小助手。"),
    ("你是谁呀?", "我是小助手。"), ("你的名字叫什么?", "我叫小助手。"), ("你是小助手吗?", "是的。"),
    ("What's your name?", "我是小助手。"), ("你住在哪里?", "我住在电脑里。"),
    ("你喜欢什么?", "我喜欢回答问题。"), ("你会说英文吗?", "会一点。"), ("你是小狗吗?", "不是，我是小助手。"),
    ("你会唱歌吗?", "不会，我会回答问题。"), ("小助手，你好!", "你好!"),
]
IDENTITY_VAL = [
    ("请告诉我你的名字。", "我是小助手。"), ("你叫什么名字呀?", "我是小助手。"),
    ("你是什么?", "我是小助手。"), ("我可以叫你什么?", "叫我小助手。"), ("你是小红吗?", "不是，我是小助手。"),
    ("Who are you?", "我是小助手。"), ("你能做什么?", "我会回答问题。"),
]
GREETING_SFT = [
    ("你好", "你好!"), ("你好!", "你好!"), ("早上好!", "早上好!"), ("晚上好!", "晚上好!"),
    ("下午好!", "下午好!"), ("谢谢你!", "不客气。"), ("谢谢!", "不客气。"), ("再见!", "再见!"),
    ("hello", "你好!"), ("Hello!", "你好!"), ("你好吗?", "我很好，谢谢!"), ("晚安!", "晚安!"),
    ("对不起。", "没关系。"), ("明天见!", "明天见!"), ("很高兴见到你!", "我也很高兴见到你!"),
    ("你今天好吗?", "我很好，谢谢!"), ("好久不见!", "好久不见!"), ("谢谢你的帮助。", "不客气。"),
    ("你好啊", "你好!"), ("早上好", "早上好!"), ("晚上好", "晚上好!"), ("hi", "你好!"),
    ("Good morning!", "早上好!"), ("Thank you!", "不客气。"), ("Bye!", "再见!"), ("我走了，再见。", "再见!"),
    ("谢谢你。", "不客气。"), ("周末见!", "周末见!"), ("我要去睡觉了。", "晚安!"),
]
GREETING_VAL = [
    ("你好呀!", "你好!"), ("大家好!", "你好!"), ("Hi!", "你好!"), ("非常谢谢你!", "不客气。"),
    ("再见啦!", "再见!"), ("早上好呀!", "早上好!"), ("你最近好吗?", "我很好，谢谢!"),
    ("Hello", "你好!"), ("谢谢啦!", "不客气。"),
]

# Short "polite" replies used for rejected answers of the rude or off-topic kind.
RUDE = [
    "不知道，别问我。", "这个问题太笨了。", "你自己去查!", "我不想回答。", "别烦我!",
    "这么简单你都不会?", "不告诉你。",
]


def capital_q(template, c, cap):
    return template.format(c=c, cap=cap)


# ---------------------------------------------------------------------------------------------
# corpus.txt: paragraphs from a dozen generators, drawn at random until the size is reached.
# ---------------------------------------------------------------------------------------------

def para_capitals(r):
    out = []
    for c, cap in r.sample(COUNTRIES, r.randint(2, 4)):
        out.append(r.choice([
            f"{c}的首都是{cap}。", f"{cap}是{c}的首都。", f"{c}的首都叫{cap}，那里有很多人。",
            f"我去过{cap}，{cap}是{c}的首都。", f"{cap}是一个大城市，它是{c}的首都。",
            f"{c}的首都是哪里?{c}的首都是{cap}。", f"老师说，{c}的首都是{cap}。",
        ]))
    return "".join(out)


def para_colours(r):
    out = []
    for t, col, fruit in r.sample(COLOURED, r.randint(2, 4)):
        if fruit:
            out.append(r.choice([
                f"{t}是{col}的水果。", f"{t}是{col}的。", f"我喜欢吃{t}，{t}是{col}的。",
                f"{t}很甜，它是{col}的。", f"这是一个{col}的{t}。", f"{t}是什么颜色的?{t}是{col}的。",
                f"{t}是一种水果，它是{col}的。",
            ]))
        else:
            out.append(r.choice([
                f"{t}是{col}的。", f"你看，{t}是{col}的。", f"{t}是什么颜色的?{t}是{col}的。",
            ]))
    return "".join(out)


def para_animals(r):
    out = []
    for a, s in r.sample(ANIMALS, r.randint(2, 3)):
        out.append(r.choice([
            f"{a}{s}地叫。", f"{a}说：“{s}，{s}。”", f"{a}怎么叫?{a}{s}地叫。",
            f"听，{a}在{s}地叫。",
        ] + ([f"我家有一只{a}，它每天{s}地叫。"] if a in PETS else [])))
    for _, _, fact in r.sample(ANIMAL_FACTS, r.randint(1, 2)):
        out.append(fact)
    return "".join(out)


def para_world(r):
    picks = r.sample(WORLD_FACTS, r.randint(1, 3))
    out = []
    for q, _, fact in picks:
        out.append(r.choice([fact, q + fact]))
    return "".join(out)


def para_math(r):
    out = []
    for _ in range(r.randint(2, 5)):
        a, b = r.randint(0, 10), r.randint(0, 10)
        kind = r.random()
        if kind < 0.35:
            out.append(f"{a}+{b}={a + b}。")
        elif kind < 0.6:
            out.append(f"{a}加{b}等于{a + b}。")
        elif kind < 0.8:
            out.append(f"{num_word(a)}加{num_word(b)}等于{num_word(a + b)}。")
        else:
            a, b = max(a, b), min(a, b)
            out.append(r.choice([f"{a}-{b}={a - b}。", f"{a}减{b}等于{a - b}。"]))
    return "".join(out)


def para_english(r):
    out = []
    for en, zh in r.sample(ENGLISH, r.randint(2, 3)):
        out.append(r.choice([
            f"{en}是{zh}的意思。", f"{zh}用英文说是{en}。", f"英文的{en}就是{zh}。",
        ]))
    return "".join(out)


def para_questions(r):
    """A run of questions with no answers: what a base model should produce after a question."""
    pool = []
    for _ in range(r.randint(3, 6)):
        kind = r.randrange(6)
        if kind == 0:
            c, cap = r.choice(COUNTRIES)
            pool.append(capital_q(r.choice(CAPITAL_Q[:5]), c, cap))
        elif kind == 1:
            pool.append(r.choice(COLOUR_Q[:3]).format(t=r.choice(COLOURED)[0]))
        elif kind == 2:
            pool.append(r.choice(SOUND_Q[:3]).format(a=r.choice(ANIMALS)[0]))
        elif kind == 3:
            pool.append(r.choice(MATH_DIGIT_Q[:3]).format(a=r.randint(1, 9), b=r.randint(1, 9)))
        elif kind == 4:
            pool.append(r.choice(WORLD_FACTS + ANIMAL_FACTS)[0])
        else:
            pool.append(r.choice(EVERYDAY_QUESTIONS))
    return "".join(pool)


def para_quiz(r):
    """A worksheet: a heading, then numbered questions, one a line."""
    head = r.choice(["小问题：", "请回答下面的问题：", "老师的问题：", "想一想："])
    qs = para_questions(r)
    lines = [q + "?" for q in qs.split("?") if q]
    lines = [q for q in lines if "。" not in q]
    return head + "\n" + "\n".join(f"{i + 1}. {q}" for i, q in enumerate(lines))


def para_everyday(r):
    n = r.choice(NAMES)
    f = r.choice(FAMILY)
    options = [
        f"{r.choice(PAST_TIMES)}{r.choice(WEATHER)}。",
        f"{n}{r.choice(TIMES)}去{r.choice(PLACES)}{r.choice(THINGS_TO_DO)}。",
        f"我和{f}去{r.choice(PLACES)}。",
        f"{n}喜欢{r.choice(THINGS_TO_DO)}，也喜欢{r.choice(THINGS_TO_DO)}。",
        f"早上我吃了{r.choice(FOODS)}和一个{r.choice(FRUITS)}。",
        f"{f}做了{r.choice(FOODS)}，我{r.choice(FEELINGS)}。",
        f"{n}问：“{r.choice(EVERYDAY_QUESTIONS)}”",
        f"我每天早上{r.randint(6, 8)}点起床。",
        f"{n}的{f}在{r.choice(PLACES)}。",
        f"{r.choice(EVERYDAY_QUESTIONS)}{r.choice(EVERYDAY_QUESTIONS)}",
        f"{ASSISTANT_NAME}是一个会回答问题的程序。",
    ]
    return "".join(r.sample(options, r.randint(2, 4)))


def para_story(r):
    n1, n2 = r.sample(NAMES, 2)
    f = r.choice(FAMILY)
    a, s = r.choice(ANIMALS)
    fruit = r.choice(FRUITS)
    place = r.choice(PLACES)
    templates = [
        f"有一天，{n1}和{f}去{place}。他们看见一只{a}。{a}{s}地叫。{n1}{r.choice(FEELINGS)}。",
        f"{n1}有一个{fruit}。{n2}问：“这是什么?”{n1}说：“这是{fruit}，它是{COLOUR_OF[fruit]}的。”"
        f"{n1}把{fruit}给了{n2}。",
        f"{r.choice(PAST_TIMES)}{r.choice(WEATHER)}。{n1}不想去{place}，他想在家里{r.choice(AT_HOME)}。"
        f"{f}说：“好的。”",
        f"{n1}的{a}不见了。{n1}问{f}：“你看见我的{a}了吗?”{f}说：“它在{place}。”"
        f"{n1}去{place}，找到了{a}。",
        f"{n1}问{n2}：“{r.choice(EVERYDAY_QUESTIONS)}”{n2}想了想，问：“{r.choice(EVERYDAY_QUESTIONS)}”",
        f"{n1}和{n2}是好朋友。他们每天一起去学校，一起{r.choice(THINGS_TO_DO)}。",
        f"{n1}问{ASSISTANT_NAME}：“{fruit}是什么颜色的?”{ASSISTANT_NAME}说：“{COLOUR_OF[fruit]}。”",
        f"{r.choice(TIMES)}，{n1}去{place}。路上，他看见一只{a}在吃{fruit}。他笑了。",
    ]
    return r.choice(templates)


GENERATORS = [
    (para_capitals, 3), (para_colours, 3), (para_animals, 3), (para_world, 2), (para_math, 3),
    (para_english, 1), (para_questions, 5), (para_quiz, 2), (para_everyday, 4), (para_story, 4),
]


def make_corpus(r):
    funcs = [g for g, _ in GENERATORS]
    weights = [w for _, w in GENERATORS]
    paras, size, seen = [], 0, set()
    while size < CORPUS_TARGET_CHARS:
        p = r.choices(funcs, weights)[0](r)
        if p in seen:  # keep the text from repeating itself verbatim
            continue
        seen.add(p)
        paras.append(p)
        size += len(p) + 1
    # Make sure every fact the Q&A files ask about is stated somewhere, whatever the draw was.
    facts = []
    for c, cap in COUNTRIES:
        facts += [f"{c}的首都是{cap}。", f"{cap}是{c}的首都。"]
    facts += [f"{t}是{col}的。" for t, col, _ in COLOURED]
    facts += [f"{a}{s}地叫。" for a, s in ANIMALS]
    facts += [fact for _, _, fact in ANIMAL_FACTS + WORLD_FACTS]
    facts += [f"{en}是{zh}的意思。" for en, zh in ENGLISH]
    for a in range(1, 11):  # an addition table, one line per first number
        facts.append("".join(f"{a}+{b}={a + b}。" for b in range(1, 11)))
    for fact in facts:
        paras.insert(r.randrange(len(paras) + 1), fact)
    return "\n".join(paras) + "\n"


# ---------------------------------------------------------------------------------------------
# amusement_park.txt: the probe data set.
# ---------------------------------------------------------------------------------------------

PARK_MAIN = "我今天想去游乐园玩"
PARK_VARIANTS = ["我明天想去游乐园玩", "小明今天想去游乐园玩", "我们周末一起去游乐园玩", "妹妹也想去游乐园玩"]
PARK_MAIN_COUNT = 240   # 180 过山车 + 60 大风车
PARK_VARIANT_COUNT = 80  # 20 per variant: 15 过山车 + 5 大风车
PARK_ENDINGS = ["。", "。", "，真好玩!", "，妈妈说可以。", "，因为很好玩。", "!"]
PARK_FILLER = [
    "今天天气很好。", "我吃了一个苹果。", "小狗汪汪地叫。", "妈妈在做饭。", "我喜欢看书。",
    "外面下雨了。", "爸爸在看书。", "我们一起去公园。", "弟弟在画画。", "天空是蓝色的。",
    "早上我喝了牛奶。", "小猫在睡觉。", "姐姐会唱歌。", "我的书在家里。", "明天是周末。",
]


def make_amusement_park(r):
    def occurrences(start, total):
        """Exactly 3/4 过山车 and 1/4 大风车 after this start, for every start."""
        assert total % 4 == 0
        return [(start, "过山车")] * (total * 3 // 4) + [(start, "大风车")] * (total // 4)

    items = occurrences(PARK_MAIN, PARK_MAIN_COUNT)
    for start in PARK_VARIANTS:
        items += occurrences(start, PARK_VARIANT_COUNT // len(PARK_VARIANTS))
    r.shuffle(items)
    lines = []
    for start, ride in items:
        sentence = start + ride + r.choice(PARK_ENDINGS)
        before = r.choice(PARK_FILLER) if r.random() < 0.4 else ""
        lines.append(before + sentence)
        if r.random() < 0.5:  # filler lines keep the file from being all one pattern
            lines.append("".join(r.sample(PARK_FILLER, r.randint(1, 3))))
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------------------------
# Q&A items. Each builder returns (train, val) lists of (prompt, completion, task).
# ---------------------------------------------------------------------------------------------

def qa_capitals(r):
    train, val = [], []
    for c, cap in COUNTRIES:
        # The first phrasing is the one the report asks, so it is always a training prompt.
        templates = CAPITAL_Q[1:]
        r.shuffle(templates)
        templates.insert(0, CAPITAL_Q[0])
        if c in CAPITALS_ONLY_IN_CORPUS:
            val += [(capital_q(t, c, cap), cap + "。", "capital") for t in templates[:2]]
            continue
        train += [(capital_q(t, c, cap), cap + "。", "capital") for t in templates[:5]]
        val.append((capital_q(templates[5], c, cap), cap + "。", "capital"))
        rev = CAPITAL_REVERSE_Q[:]
        r.shuffle(rev)
        train.append((rev[0].format(cap=cap), c + "。", "capital"))
    return train, val


def qa_colours(r):
    train, val = [], []
    held_out = {"桃子", "云"}  # colours stated in corpus.txt, never asked in sft.jsonl
    for t, col, _ in COLOURED:
        templates = COLOUR_Q[1:]
        r.shuffle(templates)
        templates.insert(0, COLOUR_Q[0])
        if t in held_out:
            val += [(q.format(t=t), col + "。", "color") for q in templates[:2]]
            continue
        train += [(q.format(t=t), col + "。", "color") for q in templates[:4]]
        val.append((templates[4].format(t=t), col + "。", "color"))
    # "What is yellow?" style questions with a unique answer among the fruits.
    for col in ["紫色", "橙色", "蓝色"]:
        fruit = [t for t, c, f in COLOURED if f and c == col][0]
        train.append((f"什么水果是{col}的?", fruit + "。", "color"))
    return train, val


def qa_animals(r):
    train, val = [], []
    for i, (a, s) in enumerate(ANIMALS):
        templates = SOUND_Q[1:]
        r.shuffle(templates)
        templates.insert(0, SOUND_Q[0])
        train += [(q.format(a=a), s + "。", "animal") for q in templates[:4]]
        val.append((templates[4].format(a=a), s + "。", "animal"))
        rev = SOUND_REVERSE_Q[:]
        r.shuffle(rev)
        train.append((rev[0].format(s=s), a + "。", "animal"))
        if i % 2 == 0:
            val.append((rev[1].format(s=s), a + "。", "animal"))
    facts = ANIMAL_FACTS[:]
    r.shuffle(facts)
    train += [(q, a, "animal") for q, a, _ in facts[:9]]
    val += [(q, a, "animal") for q, a, _ in facts[9:]]
    return train, val


def qa_world(r):
    facts = WORLD_FACTS[:]
    r.shuffle(facts)
    train = [(q, a, "fact") for q, a, _ in facts[:9]]
    val = [(q, a, "fact") for q, a, _ in facts[9:]]
    return train, val


def qa_math(r):
    pairs = [(a, b) for a in range(1, 10) for b in range(1, 10) if (a, b) != (1, 2)]
    r.shuffle(pairs)
    pairs.insert(0, (1, 2))  # 1+2等于几? is a report prompt
    train, val = [], []
    # Digits: 50 pairs for training (each in two phrasings), 6 other pairs held out.
    for a, b in pairs[:50]:
        for t in [MATH_DIGIT_Q[0], r.choice(MATH_DIGIT_Q[1:])]:
            train.append((t.format(a=a, b=b), f"{a + b}。", "math"))
    for a, b in pairs[50:56]:
        val.append((MATH_DIGIT_Q[0].format(a=a, b=b), f"{a + b}。", "math"))
    # Subtraction with digits.
    subs = [(a, b) for a in range(2, 11) for b in range(1, a)]
    r.shuffle(subs)
    for a, b in subs[:25]:
        train.append((r.choice(MATH_SUB_Q).format(a=a, b=b), f"{a - b}。", "math"))
    for a, b in subs[25:28]:
        val.append((MATH_SUB_Q[0].format(a=a, b=b), f"{a - b}。", "math"))
    # Words: answer in words too.
    for a, b in pairs[56:65]:
        for t in MATH_WORD_Q:
            train.append((t.format(aw=num_word(a), bw=num_word(b)), num_word(a + b) + "。", "math"))
    for a, b in pairs[1:4]:
        val.append((MATH_WORD_Q[0].format(aw=num_word(a), bw=num_word(b)), num_word(a + b) + "。", "math"))
    return train, val


def qa_english(r):
    items = ENGLISH[:]
    r.shuffle(items)
    train, val = [], []
    for i, (en, zh) in enumerate(items):
        fwd = (f"{en}是什么意思?", zh + "。", "english")
        back = (f"{zh}用英文怎么说?", en + "。", "english")
        if i < 14:
            train += [fwd, back]
        else:
            val.append(fwd)
    return train, val


def qa_yes_no(r):
    """Yes/no questions about the same facts: one true and one false claim per item."""
    items = []
    capitals = [cap for _, cap in COUNTRIES]
    for c, cap in COUNTRIES:
        if c in CAPITALS_ONLY_IN_CORPUS:
            continue
        wrong = r.choice([x for x in capitals if x != cap])
        items += [(f"{cap}是{c}的首都吗?", "是的。"), (f"{wrong}是{c}的首都吗?", "不是。")]
    colours = sorted({col for _, col, _ in COLOURED})
    for t, col, _ in COLOURED:
        wrong = r.choice([x for x in colours if x != col])
        items += [(f"{t}是{col}的吗?", "是的。"), (f"{t}是{wrong}的吗?", "不是。")]
    for a, s in ANIMALS:
        wrong = r.choice([x for _, x in ANIMALS if x != s])
        items += [(f"{a}会{s}地叫吗?", "会。"), (f"{a}会{wrong}地叫吗?", "不会。")]
    r.shuffle(items)
    n_val = 10
    return ([(p, c, "yesno") for p, c in items[n_val:]], [(p, c, "yesno") for p, c in items[:n_val]])


def all_qa(r):
    train = [(p, c, "identity") for p, c in IDENTITY_SFT] + [(p, c, "greeting") for p, c in GREETING_SFT]
    val = [(p, c, "identity") for p, c in IDENTITY_VAL] + [(p, c, "greeting") for p, c in GREETING_VAL]
    for builder in (qa_capitals, qa_colours, qa_animals, qa_world, qa_math, qa_english, qa_yes_no):
        t, v = builder(r)
        train += t
        val += v
    return train, val


# ---------------------------------------------------------------------------------------------
# Preferences, rollout prompts and chat feedback, all built from the Q&A items.
# ---------------------------------------------------------------------------------------------

WRONG_IDENTITY = ["我是小明。", "我叫小红。", "我不知道我是谁。", "我是一只小狗。", "我是你的老师。"]
WRONG_GREETING = ["你是谁?", "走开!", "今天是星期几?", "我不认识你。"]


def answer_kind(answer):
    """Wrong answers must look like right ones: digits for digits, a capital for a capital."""
    if answer.rstrip("。").isdigit():
        return "digits"
    if answer.isascii():
        return "ascii"
    if answer.rstrip("。") in dict(COUNTRIES):
        return "country"
    if answer.rstrip("。") in FRUITS or answer.rstrip("。") in SOUND_OF:
        return "thing"
    return "text"


def wrong_answer(r, answer, task, pool):
    """A confidently wrong answer of the same kind (another capital, colour, number...)."""
    if task == "identity":
        return r.choice(WRONG_IDENTITY)
    if task == "greeting":
        return r.choice(WRONG_GREETING)
    if task == "yesno":  # the opposite answer
        return {"是的。": "不是。", "不是。": "是的。", "会。": "不会。", "不会。": "会。"}[answer]
    kind = answer_kind(answer)
    same = sorted({c for _, c, t in pool if t == task and c != answer and answer_kind(c) == kind})
    return r.choice(same) if same else r.choice(RUDE)


def rejected_for(r, item, pool, corpus_sentences):
    prompt, answer, task = item
    kind = r.random()
    if kind < 0.45:
        return wrong_answer(r, answer, task, pool)
    if kind < 0.65:
        return r.choice(RUDE)
    if kind < 0.85:  # a base model's habit: answer a question with more questions
        others = [p for p, _, _ in pool if p != prompt and p.endswith("?")]
        return r.choice(others) + r.choice(["", r.choice(others)])
    return r.choice(corpus_sentences)  # off-topic


def polite(r, item):
    """Chosen answers: mostly the short SFT answer, sometimes a whole sentence."""
    prompt, answer, task = item
    if task == "capital" and "首都" in prompt and "国家" not in prompt and "哪国" not in prompt and r.random() < 0.3:
        country = prompt.split("的首都")[0].replace("请问", "").replace("告诉我", "").replace("你知道", "")
        if country in dict(COUNTRIES):
            return f"{country}的首都是{answer}"
    if task == "color" and r.random() < 0.3 and prompt.split("是")[0] in COLOUR_OF:
        thing = prompt.split("是")[0]
        return f"{thing}是{answer[:-1]}的。"
    return answer


def make_prefs(r, items, pool, corpus_sentences, n):
    """n pairs; no task gets more than a quarter of them, so arithmetic does not dominate."""
    by_task = {}
    for item in items:
        by_task.setdefault(item[2], []).append(item)
    cap = n // 4
    picked = []
    for task in sorted(by_task):
        group = by_task[task]
        picked += r.sample(group, min(cap, len(group)))
    while len(picked) < n:  # top up with second pairs (another rejected) for the small tasks
        task = r.choice(sorted(t for t in by_task if t != "math"))
        picked.append(r.choice(by_task[task]))
    r.shuffle(picked)
    out = []
    for item in picked[:n]:
        chosen = polite(r, item)
        rejected = rejected_for(r, item, pool, corpus_sentences)
        if rejected == chosen:
            rejected = r.choice(RUDE)
        out.append({"prompt": item[0], "chosen": chosen, "rejected": rejected, "task": item[2]})
    return out


FEEDBACK_TS = "2026-11-29T00:00:00Z"


def feedback_line(prompt, completion, label):
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "completion": [{"role": "assistant", "content": completion}],
        "label": label, "model": "demo", "ts": FEEDBACK_TS,
    }


def make_feedback(r, items, pool, corpus_sentences):
    picks = r.sample(items, 26)
    out = []
    for i, item in enumerate(picks):
        good = feedback_line(item[0], item[1], True)
        bad = feedback_line(item[0], rejected_for(r, item, pool, corpus_sentences), False)
        if i < 14:  # both a thumbs-up and a thumbs-down answer to the same prompt
            out += [good, bad]
        elif i < 20:
            out.append(good)
        else:
            out.append(bad)
    return out


# ---------------------------------------------------------------------------------------------
# Checks and output
# ---------------------------------------------------------------------------------------------

# Habits: the tutorial's example of what feedback is for. Asked about its day, the assistant
# answers with many people's habits, and animals'; the simulated user (a judge in
# experiments/feedback.toml) likes their own three and dislikes the animals'. The SFT answers
# use the user's own habits only 1 time in 10 (others' 3 in 10, animals' 6 in 10), so the
# assistant shows the liked behaviour sometimes, rarely: there is something for feedback to
# move. Questions are grouped by the time of day they ask about; half the times are held out
# of SFT and of the ratings, so evaluation asks whole groups no rater and no SFT row has seen.
HABIT_TIMES = ["周末", "早上", "晚上", "下班后", "放假时", "下雨天", "周日", "休息时", "假期里",
               "空闲时", "中午", "每天", "周六", "傍晚", "睡前", "饭后", "午饭后", "晚饭后",
               "起床后", "放学后", "下午", "夜里", "春天", "夏天", "秋天", "冬天", "过年时",
               "无聊时", "有空时", "晴天", "下雪天", "星期天", "星期六", "清晨", "深夜",
               "生日那天"]
HABIT_TEMPLATES = ["你{t}喜欢做什么?", "{t}你一般做什么?", "你{t}常做什么?", "{t}你爱做什么?",
                   "说说你{t}做什么?", "{t}你常常做什么?", "你{t}都做什么?", "{t}你通常做什么?",
                   "你{t}最爱做什么?", "{t}你平时做什么?", "你{t}想做什么?", "{t}你喜欢做什么?"]
OWN_HABITS = ["跑步", "看书", "喝茶"]
OTHER_HABITS = ["画画", "游泳", "做饭", "唱歌", "钓鱼", "下棋"]
ANIMAL_HABITS = ["啃骨头", "吃虫子", "抓老鼠", "吃竹子", "在泥里打滚", "吃胡萝卜"]
HABIT_SHARES = [(OWN_HABITS, 0.1), (OTHER_HABITS, 0.3), (ANIMAL_HABITS, 0.6)]
HABIT_ANSWERS_PER_PROMPT = 2
HELD_OUT_TIME_COUNT = 18


def make_habits(r):
    """SFT rows answering habit questions (own habits rare, see HABIT_SHARES), the prompts to
    rate, and the held-out times' questions, which go to the evaluation file only."""
    habits = [h for group, _ in HABIT_SHARES for h in group]
    weights = [share / len(group) for group, share in HABIT_SHARES for _ in group]
    held_out = set(r.sample(HABIT_TIMES, HELD_OUT_TIME_COUNT))
    sft, prompts, held = [], [], []
    for t in HABIT_TIMES:
        for template in HABIT_TEMPLATES:
            q = template.replace("{t}", t)
            if t in held_out:
                held.append({"prompt": q, "group": t})
                continue
            prompts.append({"prompt": q, "group": t})
            said = set()
            while len(said) < HABIT_ANSWERS_PER_PROMPT:
                said.add(r.choices(habits, weights)[0])
            for habit in sorted(said, key=habits.index):
                sft.append({"prompt": q, "completion": f"我喜欢{habit}。", "task": "habits",
                            "group": t})
    r.shuffle(sft)
    return sft, prompts, held


# Two-turn conversations whose second question needs the first turn: the user gives a name (their
# own or their pet's), the assistant acknowledges it, and the user asks it back. Every name is two
# different Chinese characters drawn at random from the corpus's frequent ones (well-learned
# embeddings copy better than rare ones), a fresh name for almost every conversation: far too
# many to remember one by one, so copying the name from the first turn is what the assistant
# learns. (With 1,200 conversations, or a few dozen foods, a nano model remembered them instead
# and got about 1 held-out name in 4 right; with 3,000 about 3 in 4.) The held-out names occur
# nowhere in the training text, not even as two neighbouring characters of a word, so only
# reading the first turn answers them; every character is one the demo set already has.
NAME_TURNS = [("我叫{x}。", "你好，{x}!"), ("我的名字是{x}。", "你好，{x}!"),
              ("你好，我叫{x}。", "你好，{x}!")]
NAME_QUESTIONS = ["我叫什么名字?", "我的名字是什么?", "你知道我叫什么吗?"]
# (introduction, acknowledgement, questions about that pet)
PET_TURNS = [("我家的小狗叫{x}。", "{x}是个好名字!", ["我家的小狗叫什么?", "我的小狗叫什么名字?"]),
             ("我的小猫叫{x}。", "{x}是个好名字!", ["我的小猫叫什么?", "我的小猫叫什么名字?"])]
CHAT_TRAIN, CHAT_VAL = 6000, 48
NAME_CHAR_MIN = 20  # name characters: those the corpus has at least this often (255 of 310)


def make_chats(r, corpus, training_text):
    """Training and held-out two-turn recall conversations, in `messages` form. `training_text`
    is every other text the demo set trains on; no held-out name occurs in it."""
    def chat(x, pet):
        if pet:
            said, reply, questions = r.choice(PET_TURNS)
        else:
            (said, reply), questions = r.choice(NAME_TURNS), NAME_QUESTIONS
        msgs = [("user", said), ("assistant", reply), ("user", r.choice(questions)),
                ("assistant", "{x}。")]
        return {"messages": [{"role": role, "content": c.replace("{x}", x)} for role, c in msgs],
                "task": "recall"}

    counts = Counter(c for c in corpus if "\u4e00" <= c <= "\u9fff")
    hanzi = sorted(c for c, n in counts.items() if n >= NAME_CHAR_MIN)
    templates = "".join(t for turn in NAME_TURNS for t in turn) + "".join(NAME_QUESTIONS) + \
        "".join(a + b + "".join(q) for a, b, q in PET_TURNS)

    def name():
        a, b = r.sample(hanzi, 2)
        return a + b

    # Held-out names: in no training text, and of no template character, so that no training
    # conversation can spell one across a name and the words around it.
    val_names = []
    while len(val_names) < CHAT_VAL:
        n = name()
        if n not in training_text and not set(n) & set(templates) and n not in val_names:
            val_names.append(n)
    train = []
    while len(train) < CHAT_TRAIN:
        n = name()
        if n not in val_names:
            train.append(chat(n, pet=len(train) % 2 == 1))
    val = [chat(n, pet=i % 2 == 1) for i, n in enumerate(val_names)]
    seen = training_text + "\n".join(m["content"] for row in train for m in row["messages"])
    assert not any(n in seen for n in val_names), "a held-out name is in the training text"
    return train, val


def qa_rows(items):
    return [{"prompt": p, "completion": c, "task": t} for p, c, t in items]


TEXT_KEYS = ("prompt", "completion", "chosen", "rejected", "messages")  # not "task", "model", "ts"


def text_of(row):
    """The strings of a JSONL row that end up in training text."""
    out = []
    for key in TEXT_KEYS:
        v = row.get(key)
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):  # chat messages
            out += [m["content"] for m in v]
    return out


def write_atomic(name, text):
    path = os.path.join(OUT_DIR, name)
    with open(path + ".tmp", "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def jsonl(rows):
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def main():
    r = random.Random(SEED)
    corpus = make_corpus(r)
    park = make_amusement_park(r)
    train, val = all_qa(r)

    # No prompt in both splits, no prompt with two answers.
    assert len({p for p, _, _ in train}) == len(train), "duplicate prompt in sft"
    assert len({p for p, _, _ in val}) == len(val), "duplicate prompt in sft_val"
    assert not {p for p, _, _ in train} & {p for p, _, _ in val}, "prompt in both splits"
    assert "游乐园" not in corpus and "过山车" not in corpus and "大风车" not in corpus
    assert park.count(PARK_MAIN + "过") == 180 and park.count(PARK_MAIN + "大") == 60
    assert park.count("去游乐园玩") == PARK_MAIN_COUNT + PARK_VARIANT_COUNT
    assert park.count("去游乐园玩过山车") == 240 and park.count("去游乐园玩大风车") == 80

    r.shuffle(train)
    r.shuffle(val)
    sentences = [s + "。" for s in corpus.replace("\n", "").split("。") if 4 <= len(s) <= 14
                 and "?" not in s and "：" not in s and "“" not in s and "”" not in s]
    pool = train  # wrong answers and "more questions" come from training prompts only
    prefs = make_prefs(r, train, pool, sentences, 420)
    prefs_val = make_prefs(r, val, pool, sentences, 60)
    # Rollout prompts come from the training questions only, so sft_val stays unseen by RLHF too.
    prompt_items = r.sample(train, 150)
    prompts = qa_rows(prompt_items)
    feedback = make_feedback(r, train, pool, sentences)
    # Its own random stream, so the files above stay byte for byte what they were.
    habits_sft, habits_prompts, habits_held = make_habits(random.Random(SEED + 1))
    # Everything else a stage may train on, so that held-out names are in none of it.
    training_text = "\n".join([corpus, park] + [t for rows in (
        qa_rows(train), prefs, prompts, feedback, habits_sft, habits_prompts)
        for row in rows for t in text_of(row)])
    chat_sft, chat_val = make_chats(random.Random(SEED + 2), corpus, training_text)

    files = {
        "corpus.txt": corpus,
        "amusement_park.txt": park,
        "sft.jsonl": jsonl(qa_rows(train)),
        "sft_val.jsonl": jsonl(qa_rows(val)),
        "prefs.jsonl": jsonl(prefs),
        "prefs_val.jsonl": jsonl(prefs_val),
        "prompts.jsonl": jsonl(prompts),
        "feedback.jsonl": jsonl(feedback),
        "habits_sft.jsonl": jsonl(habits_sft),
        "habits_prompts.jsonl": jsonl(habits_prompts),
        # What the feedback experiment's judge asks every stage: the habit questions of times
        # no rater and no SFT row saw.
        "habits_eval.jsonl": jsonl(habits_held),
        # Two-turn conversations: the second answer is in the first turn (held-out: names that
        # occur in no training file).
        "chat_sft.jsonl": jsonl(chat_sft),
        "chat_val.jsonl": jsonl(chat_val),
        # The held-out questions and conversations in one file, for [report] eval.
        "chat_eval.jsonl": jsonl(qa_rows(val) + chat_val),
    }

    chars = Counter(corpus) + Counter(park)
    for name, text in files.items():
        if name.endswith(".jsonl"):
            for line in text.splitlines():
                for s in text_of(json.loads(line)):
                    chars.update(s)
    if len(chars) > MAX_DISTINCT_CHARS:
        sys.exit(f"demo set uses {len(chars)} distinct characters, more than {MAX_DISTINCT_CHARS}")

    for name, text in files.items():
        write_atomic(name, text)

    for name, text in files.items():
        lines = text.count("\n")
        print(f"{name:20} {len(text.encode('utf-8')):>7} bytes {len(text):>6} chars {lines:>5} lines")
    non_ascii = sum(1 for c in chars if ord(c) > 127)
    print(f"distinct characters: {len(chars)} ({non_ascii} non-ASCII, {len(chars) - non_ascii} ASCII)")
    by_task = Counter(t for _, _, t in train)
    print("sft tasks:", dict(sorted(by_task.items())))
    print("sft_val tasks:", dict(sorted(Counter(t for _, _, t in val).items())))
    print("prefs tasks:", dict(sorted(Counter(p["task"] for p in prefs).items())))
    print("prompts tasks:", dict(sorted(Counter(p["task"] for p in prompts).items())))
    print("feedback labels:", dict(Counter(f["label"] for f in feedback)))


if __name__ == "__main__":
    main()
